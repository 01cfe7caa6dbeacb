import FerryDisk
import Synchronization

/// A read-only view of a device with 4 KiB pages replaced in memory (a replayed
/// VHDX log). Bytes beyond the inner device read as zeros.
final class OverlayDevice: BlockDevice {
    let inner: any BlockDevice
    let size: UInt64
    let name: String
    var logicalSectorSize: Int { 512 }
    let capabilities: DiskCapabilities = [.randomAccess]
    private let pages = Mutex<[UInt64: [UInt8]]>([:])
    private static let page: UInt64 = 4096

    init(_ inner: any BlockDevice, size: UInt64, name: String) {
        self.inner = inner
        self.size = size
        self.name = name
    }

    func store(_ bytes: [UInt8], at offset: UInt64) { pages.withLock { $0[offset] = bytes } }

    func zero(_ offset: UInt64, _ length: UInt64) {
        let zeros = [UInt8](repeating: 0, count: Int(Self.page))
        pages.withLock { pages in
            for at in stride(from: offset, to: offset + length, by: Int(Self.page)) { pages[at] = zeros }
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let base = position / Self.page * Self.page
            let within = Int(position - base)
            let n = min(Int(Self.page) - within, buffer.count - done)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n])
            if let page = pages.withLock({ $0[base] }) {
                page.withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[within..<within + n])) }
            } else if position >= inner.size {
                target.initializeMemory(as: UInt8.self, repeating: 0)
            } else {
                let inside = min(n, Int(inner.size - position))
                try inner.read(into: UnsafeMutableRawBufferPointer(rebasing: target[0..<inside]), at: position)
                if inside < n { UnsafeMutableRawBufferPointer(rebasing: target[inside...]).initializeMemory(as: UInt8.self, repeating: 0) }
            }
            done += n
        }
    }
}
