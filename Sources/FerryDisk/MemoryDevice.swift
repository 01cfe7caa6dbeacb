import Synchronization

/// A disk held in memory, sparse in 64 KiB pages: for tests, fixtures and small
/// metadata images. Unwritten pages are holes and report as such in `extents`.
public final class MemoryDevice: BlockDevice {
    public static let pageSize = 64 * 1024

    public let name: String
    public let size: UInt64
    public let logicalSectorSize: Int
    public let capabilities: DiskCapabilities
    private let pages = Mutex<[UInt64: [UInt8]]>([:])

    public init(name: String = "memory", size: UInt64, logicalSectorSize: Int = 512, writable: Bool = true) {
        self.name = name
        self.size = size
        self.logicalSectorSize = logicalSectorSize
        var caps: DiskCapabilities = [.randomAccess, .extents]
        if writable { caps.insert(.writable) }
        capabilities = caps
    }

    /// A device holding exactly `bytes` (all-zero pages stay holes).
    public convenience init(name: String = "memory", bytes: [UInt8], writable: Bool = true) {
        self.init(name: name, size: UInt64(bytes.count), writable: writable)
        bytes.withUnsafeBytes { store($0, at: 0) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        pages.withLock { pages in
            Self.forEachPiece(of: buffer.count, at: offset) { page, within, done, n in
                let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n])
                if let bytes = pages[page] {
                    bytes.withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[within..<within + n])) }
                } else {
                    target.initializeMemory(as: UInt8.self, repeating: 0)
                }
            }
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard capabilities.contains(.writable) else {
            throw DiskError(.readOnly, name, operation: "write", "the memory disk is read-only")
        }
        try checkRange(offset, UInt64(buffer.count), operation: "write")
        store(buffer, at: offset)
    }

    private func store(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) {
        pages.withLock { pages in
            Self.forEachPiece(of: buffer.count, at: offset) { page, within, done, n in
                var bytes = pages[page] ?? [UInt8](repeating: 0, count: Self.pageSize)
                bytes.withUnsafeMutableBytes {
                    UnsafeMutableRawBufferPointer(rebasing: $0[within..<within + n])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[done..<done + n]))
                }
                pages[page] = bytes.allSatisfy({ $0 == 0 }) ? nil : bytes
            }
        }
    }

    /// Splits `count` bytes at `offset` at page boundaries: (page, offset within it,
    /// bytes done before this piece, piece length).
    private static func forEachPiece(of count: Int, at offset: UInt64, _ body: (UInt64, Int, Int, Int) -> Void) {
        var done = 0
        while done < count {
            let position = offset + UInt64(done)
            let within = Int(position % UInt64(pageSize))
            let n = min(pageSize - within, count - done)
            body(position / UInt64(pageSize), within, done, n)
            done += n
        }
    }

    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try writeZeroBytes(self, at: offset, length: length)
    }

    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        try checkRange(offset, length, operation: "extents")
        let pageSize = UInt64(Self.pageSize)
        return pages.withLock { pages in
            var result: [Extent] = []
            var position = offset
            let end = offset + length
            while position < end {
                let page = position / pageSize
                let stop = min((page + 1) * pageSize, end)
                let kind: ExtentKind = pages[page] == nil ? .hole : .data
                if let last = result.last, last.kind == kind {
                    result[result.count - 1].length += stop - position
                } else {
                    result.append(Extent(offset: position, length: stop - position, kind: kind))
                }
                position = stop
            }
            return result
        }
    }

    /// All bytes, for assertions in tests.
    public func contents() throws -> [UInt8] { try readBytes(at: 0, count: Int(size)) }
}
