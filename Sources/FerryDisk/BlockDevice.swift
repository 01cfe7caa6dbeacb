/// What a disk endpoint can do, asked before the copy engine plans its work
/// (nbdcopy's `can_extents`, `can_write`… in one value).
public struct DiskCapabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Positional reads (and writes, if writable) at any offset. Without it the
    /// endpoint is a stream: offsets must arrive in order, one after another.
    public static let randomAccess = DiskCapabilities(rawValue: 1 << 0)
    /// `extents(at:length:)` reports real allocation, so holes need not be read.
    public static let extents = DiskCapabilities(rawValue: 1 << 1)
    // No flag for cheap zeroing, discard or flush: every endpoint's `writeZeros` picks the
    // cheapest way it has (hole, ZERO_RANGE, BLKZEROOUT, bytes) and every `flush` does what
    // the endpoint can, so nothing would consult such flags (capabilities nobody reads lie).
    /// The endpoint accepts writes.
    public static let writable = DiskCapabilities(rawValue: 1 << 5)
    /// Reads wait on a peer (an NBD export): most of a read's time is latency, not CPU, so the
    /// copy engine keeps several reads in flight ahead of its workers (`CopyOptions.readAhead`).
    public static let remote = DiskCapabilities(rawValue: 1 << 6)
}

/// How a range of a disk reads.
public enum ExtentKind: String, Sendable, Hashable, Codable {
    /// Allocated data; must be read.
    case data
    /// Allocated but known to read as zeros (e.g. a qcow2 zero cluster).
    case zero
    /// Not allocated; reads as zeros (a sparse file's hole, an unallocated grain).
    case hole

    /// True when the range reads as zeros without reading it.
    public var readsAsZero: Bool { self != .data }
}

/// One run of a disk with the same kind.
public struct Extent: Sendable, Hashable, CustomStringConvertible {
    public var offset: UInt64
    public var length: UInt64
    public var kind: ExtentKind

    public init(offset: UInt64, length: UInt64, kind: ExtentKind) {
        self.offset = offset
        self.length = length
        self.kind = kind
    }

    public var end: UInt64 { offset + length }
    public var description: String { "\(kind)[\(offset)+\(length)]" }
}

/// A virtual disk that ferry can read or write: a file, a block device, a pipe,
/// an image format, later an NBD export or a network peer.
///
/// The shape follows nbdcopy's ops table: a size, capabilities, positional I/O,
/// efficient zeroing, and extents where the endpoint knows them. Implementations are
/// thread-safe for concurrent positional reads and writes at distinct offsets;
/// stream endpoints (no `.randomAccess`) require strictly sequential offsets.
public protocol BlockDevice: AnyObject, Sendable {
    /// A name for messages: the path, or "stdin", or "qcow2 image disk.qcow2".
    var name: String { get }
    /// Virtual size in bytes.
    var size: UInt64 { get }
    /// Logical sector size in bytes (512 or 4096 for real disks).
    var logicalSectorSize: Int { get }
    var capabilities: DiskCapabilities { get }

    /// Reads exactly `buffer.count` bytes at `offset`. `offset + count` must not exceed `size`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    /// Writes all of `buffer` at `offset`.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Makes `[offset, offset+length)` read as zeros, as cheaply as the endpoint allows.
    /// `mayDiscard` allows deallocating the range (punching holes) instead of writing.
    func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws
    /// The extents covering `[offset, offset+length)`, in order and without gaps.
    func extents(at offset: UInt64, length: UInt64) throws -> [Extent]
    /// Makes every completed write durable.
    func flush() throws
    /// Releases the endpoint. Further calls fail.
    func close() throws
}

extension BlockDevice {
    public var isRandomAccess: Bool { capabilities.contains(.randomAccess) }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw DiskError(.readOnly, name, operation: "write", "the endpoint is read-only")
    }

    /// Fallback zeroing: write zero bytes in bounded pieces.
    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try writeZeroBytes(self, at: offset, length: length)
    }

    /// Fallback: the whole range is data.
    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        length == 0 ? [] : [Extent(offset: offset, length: length, kind: .data)]
    }

    public func flush() throws {}
    public func close() throws {}

    /// Reads `count` bytes at `offset` into a new array (for parsers reading metadata).
    public func readBytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw DiskError(.outOfRange, name, operation: "read", "negative length \(count)") }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= size else {
            throw DiskError(
                .outOfRange, name, operation: "read",
                "\(count) bytes at offset \(offset) run past the end of the \(size)-byte disk")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return bytes
    }

    /// Checks that `[offset, offset+length)` lies inside the disk.
    public func checkRange(_ offset: UInt64, _ length: UInt64, operation: String) throws {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= size else {
            throw DiskError(
                .outOfRange, name, operation: operation,
                "range \(offset)+\(length) runs past the end of the \(size)-byte disk")
        }
    }
}

/// Writes zero bytes through `write`, 1 MiB at a time.
public func writeZeroBytes(_ device: any BlockDevice, at offset: UInt64, length: UInt64) throws {
    let piece = 1 << 20
    let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: piece, alignment: 4096)
    defer { zeros.deallocate() }
    zeros.initializeMemory(as: UInt8.self, repeating: 0)
    var done: UInt64 = 0
    while done < length {
        let n = Int(min(UInt64(piece), length - done))
        try device.write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: offset + done)
        done += UInt64(n)
    }
}
