public import FerryDisk
public import Synchronization

/// Wraps a device and fails reads at or past `failAt`, or counts what was read:
/// for testing what a copy leaves behind when the source breaks mid-way.
/// `wholeRead` hides the inner device's extents, as a block device has none: every byte
/// must be read, zeros included.
public final class FaultyDevice: BlockDevice {
    public let inner: any BlockDevice
    public let failAt: UInt64?
    public let wholeRead: Bool
    public let bytesRead = Atomic<UInt64>(0)

    public init(_ inner: any BlockDevice, failAt: UInt64? = nil, wholeRead: Bool = false) {
        self.inner = inner
        self.failAt = failAt
        self.wholeRead = wholeRead
    }

    public var name: String { inner.name }
    public var size: UInt64 { inner.size }
    public var logicalSectorSize: Int { inner.logicalSectorSize }
    public var capabilities: DiskCapabilities {
        wholeRead ? inner.capabilities.subtracting(.extents) : inner.capabilities
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        if let failAt, offset + UInt64(buffer.count) > failAt {
            throw DiskError(.io, name, operation: "read", errno: 5, "injected I/O error at offset \(offset)")
        }
        bytesRead.add(UInt64(buffer.count), ordering: .relaxed)
        try inner.read(into: buffer, at: offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws { try inner.write(buffer, at: offset) }
    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try inner.writeZeros(at: offset, length: length, mayDiscard: mayDiscard)
    }
    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        if wholeRead { return length == 0 ? [] : [Extent(offset: offset, length: length, kind: .data)] }
        return try inner.extents(at: offset, length: length)
    }
    public func flush() throws { try inner.flush() }
}
