import FerryDisk

/// A byte range of another device, read-only (an OVA member).
final class SliceDevice: BlockDevice {
    let inner: any BlockDevice
    let offset: UInt64
    let size: UInt64
    let name: String
    var logicalSectorSize: Int { 512 }
    let capabilities: DiskCapabilities = [.randomAccess]

    init(_ inner: any BlockDevice, offset: UInt64, size: UInt64, name: String) {
        self.inner = inner
        self.offset = offset
        self.size = size
        self.name = name
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at position: UInt64) throws {
        try checkRange(position, UInt64(buffer.count), operation: "read")
        try inner.read(into: buffer, at: offset + position)
    }
}
