/// A window `[offset, offset+length)` of another device, seen as a disk of its own:
/// a partition of a whole disk, or the first `length` bytes of a larger target.
public final class DeviceSlice: BlockDevice {
    public let base: any BlockDevice
    public let offset: UInt64
    public let size: UInt64

    public init(_ base: any BlockDevice, offset: UInt64 = 0, length: UInt64) throws {
        try base.checkRange(offset, length, operation: "slice")
        self.base = base
        self.offset = offset
        self.size = length
    }

    public var name: String { offset == 0 ? base.name : "\(base.name)@\(offset)" }
    public var logicalSectorSize: Int { base.logicalSectorSize }
    public var capabilities: DiskCapabilities { base.capabilities }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        try base.read(into: buffer, at: self.offset + offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "write")
        try base.write(buffer, at: self.offset + offset)
    }

    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try checkRange(offset, length, operation: "zero")
        try base.writeZeros(at: self.offset + offset, length: length, mayDiscard: mayDiscard)
    }

    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        try checkRange(offset, length, operation: "extents")
        return try base.extents(at: self.offset + offset, length: length).map {
            Extent(offset: $0.offset - self.offset, length: $0.length, kind: $0.kind)
        }
    }

    public func flush() throws { try base.flush() }
}
