/// A compact form for fuzz inputs that stand for a large, mostly empty disk (a partition
/// table with a backup header at the end, an NTFS volume, a VHDX with 1 MiB-aligned regions):
/// a list of pages, each
///
/// ```
///  [ page index u16 LE | pageSize bytes ]  ...   (a short last page is zero-padded)
/// ```
/// The disk is as large as the highest page named; pages not named are zeros; a page named
/// twice keeps its last copy. A mutated index moves a page; mutated data stays where it was,
/// so the fuzzer's coverage feedback still points at the structure it changed.
public enum FuzzPagedInput {
    /// The read-only disk `bytes` describe.
    public static func device(_ bytes: [UInt8], pageSize: Int) -> any BlockDevice {
        var pages: [UInt64: Range<Int>] = [:]
        var at = 0
        var highest: UInt64 = 0
        while at + 2 < bytes.count {
            let index = UInt64(bytes[at]) | UInt64(bytes[at + 1]) << 8
            pages[index] = (at + 2)..<min(bytes.count, at + 2 + pageSize)
            highest = max(highest, index)
            at += 2 + pageSize
        }
        return PagedDevice(bytes: bytes, pages: pages, pageSize: pageSize, size: pages.isEmpty ? 0 : (highest + 1) * UInt64(pageSize))
    }

    /// The paged form of `device` (its first 65536 pages), leaving out all-zero pages and,
    /// when `filler` is given, pages holding nothing else (e.g. 0xFF for an NTFS log file);
    /// the last page is always kept, so the disk keeps its size.
    public static func encode(_ device: any BlockDevice, pageSize: Int, skipping filler: UInt8? = nil) throws -> [UInt8] {
        var out: [UInt8] = []
        let count = min((device.size + UInt64(pageSize) - 1) / UInt64(pageSize), 1 << 16)
        for index in 0..<count {
            let offset = index * UInt64(pageSize)
            var page = try device.readBytes(at: offset, count: Int(min(UInt64(pageSize), device.size - offset)))
            // The last page always goes in: it keeps the disk's size.
            let empty = page.allSatisfy { $0 == 0 } || filler.map { f in page.allSatisfy { $0 == f } } == true
            if empty, index + 1 < count { continue }
            page += [UInt8](repeating: 0, count: pageSize - page.count)
            out += [UInt8(index & 0xFF), UInt8(index >> 8)] + page
        }
        return out
    }

    /// The disk of a paged input: reads copy from the input's bytes, or zeros.
    final class PagedDevice: BlockDevice {
        let name = "fuzz input"
        let bytes: [UInt8]
        let pages: [UInt64: Range<Int>]
        let pageSize: Int
        let size: UInt64
        let logicalSectorSize = 512
        let capabilities: DiskCapabilities = [.randomAccess]

        init(bytes: [UInt8], pages: [UInt64: Range<Int>], pageSize: Int, size: UInt64) {
            self.bytes = bytes
            self.pages = pages
            self.pageSize = pageSize
            self.size = size
        }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
            try checkRange(offset, UInt64(buffer.count), operation: "read")
            var done = 0
            while done < buffer.count {
                let position = offset + UInt64(done)
                let within = Int(position % UInt64(pageSize))
                let n = min(pageSize - within, buffer.count - done)
                let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n])
                target.initializeMemory(as: UInt8.self, repeating: 0)
                if let range = pages[position / UInt64(pageSize)], range.count > within {
                    let take = min(n, range.count - within)
                    bytes.withUnsafeBytes { source in
                        let start = range.lowerBound + within
                        target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<start + take]))
                    }
                }
                done += n
            }
        }
    }
}

/// A read-only disk over the bytes of a fuzz input (no page table, no copy per page).
public final class FuzzBytesDevice: BlockDevice {
    public let name: String
    public let bytes: [UInt8]
    public var size: UInt64 { UInt64(bytes.count) }
    public let logicalSectorSize = 512
    public let capabilities: DiskCapabilities = [.randomAccess]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        let start = Int(offset)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[start..<start + buffer.count])) }
    }
}
