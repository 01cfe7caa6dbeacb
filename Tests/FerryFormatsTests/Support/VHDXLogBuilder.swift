import FerryBinary
import Foundation

@testable import FerryFormats

/// Makes a clean qemu VHDX (1 MiB blocks) dirty: one log entry, under a new log GUID
/// in the current header, that allocates an absent block `k` (two data pages, the
/// BAT page), zeroes 8 KiB inside present block `j`, and covers the rest of the new
/// block with a zero descriptor. [MS-VHDX] 2.3.
enum VHDXLogBuilder {
    /// How the log entries are laid out: how many entries share the writes, the log
    /// sector the first one starts at (entries wrap around the log's end), and where
    /// an older, inactive entry lies, if any.
    struct Layout {
        var entries = 1
        var startSector = 0
        var staleSector: Int?
    }

    enum Write {
        case page([UInt8], at: Int)
        case zero(Int, at: Int)
    }

    static func dirty(clean: [UInt8], rng: inout SeededRandom, layout: Layout = Layout()) throws -> (bytes: [UInt8], k: Int, j: Int, pageA: [UInt8])? {
        var bytes = clean
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        let headers = try [65536, 131072].map { try VHDX.Header(parsing: Array(bytes[$0..<$0 + 4096]), baseOffset: UInt64($0)) }
        guard let current = headers.max(by: { $0.sequence < $1.sequence }) else { return nil }
        let regions = try VHDX.RegionTable(parsing: Array(bytes[196608..<196608 + 65536]), baseOffset: 196608)
        guard let batOffset = regions.entries.first(where: { $0.guid == VHDX.Region.bat })?.offset else { return nil }
        let bat = (0..<8).map { bytes.littleEndian(UInt64.self, at: Int(batOffset) + $0 * 8) ?? 0 }
        guard let k = bat.firstIndex(where: { $0 & 7 != 6 }), let j = bat.firstIndex(where: { $0 & 7 == 6 }) else {
            return nil
        }
        let mib = 1 << 20
        let newBlock = (bytes.count + mib - 1) / mib * mib
        let pageA = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let pageB = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var batPage = Array(bytes[Int(batOffset)..<Int(batOffset) + 4096])
        batPage.replaceSubrange(k * 8..<k * 8 + 8, with: le(UInt64(newBlock) | 6))
        let zeroAt = Int((bat[j] >> 20) << 20) + 65536
        let sequence: UInt64 = 0x1_0000_0007
        let guid = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let writes: [Write] = [
            .page(pageA, at: newBlock), .page(pageB, at: newBlock + 8192), .page(batPage, at: Int(batOffset)),
            .zero(8192, at: zeroAt),
            // The rest of the new block, so the file covers it (qemu does not grow to LastFileOffset).
            .zero(mib - 12288, at: newBlock + 12288),
        ]
        // Entry i carries the writes whose index is i modulo the entry count; all share
        // the tail (the first entry), with sequence numbers rising by one.
        let count = max(1, min(layout.entries, writes.count))
        let logLength = Int(current.logLength)
        var position = layout.startSector * 4096
        let tail = position
        func place(_ entry: [UInt8], at: Int) {
            for (i, byte) in entry.enumerated() { bytes[Int(current.logOffset) + (at + i) % logLength] = byte }
        }
        for i in 0..<count {
            let mine = writes.enumerated().filter { $0.offset % count == i }.map(\.element)
            let entry = logEntry(sequence: sequence + UInt64(i), tail: tail, guid: guid, writes: mine,
                                 flushed: bytes.count, last: newBlock + mib)
            place(entry, at: position)
            position = (position + entry.count) % logLength
        }
        if let stale = layout.staleSector {
            // An older entry under the same GUID, outside the active sequence: replaying it
            // would zero block k's first page.
            let entry = logEntry(sequence: sequence - 10, tail: stale * 4096, guid: guid, writes: [.zero(4096, at: newBlock)],
                                 flushed: bytes.count, last: newBlock + mib)
            place(entry, at: stale * 4096)
        }
        var header = Array(bytes[Int(current.offset)..<Int(current.offset) + 4096])
        header.replaceSubrange(48..<64, with: guid)
        header.replaceSubrange(4..<8, with: le(VHDX.crc32c(header, zeroing: 4)))
        bytes.replaceSubrange(Int(current.offset)..<Int(current.offset) + 4096, with: header)
        return (bytes, k, j, pageA)
    }

    /// One log entry ([MS-VHDX] 2.3.1): header and descriptors padded to 4 KiB, then a
    /// data sector per page, CRC-32C over the whole entry.
    static func logEntry(sequence: UInt64, tail: Int, guid: [UInt8], writes: [Write], flushed: Int, last: Int) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        var descriptors: [UInt8] = []
        var dataSectors: [UInt8] = []
        for write in writes {
            switch write {
            case .page(let page, let at):
                descriptors += Array("desc".utf8) + Array(page[4092..<4096]) + Array(page[0..<8]) + le(UInt64(at)) + le(sequence)
                dataSectors += Array("data".utf8) + le(UInt32(sequence >> 32)) + Array(page[8..<4092]) + le(UInt32(truncatingIfNeeded: sequence))
            case .zero(let length, let at):
                descriptors += Array("zero".utf8) + le(UInt32(0)) + le(UInt64(length)) + le(UInt64(at)) + le(sequence)
            }
        }
        var entry = Array("loge".utf8) + le(UInt32(0)) + le(UInt32(4096 + dataSectors.count)) + le(UInt32(tail)) + le(sequence)
        entry += le(UInt32(writes.count)) + le(UInt32(0)) + guid + le(UInt64(flushed)) + le(UInt64(last))
        entry += descriptors
        entry += [UInt8](repeating: 0, count: 4096 - entry.count) + dataSectors
        entry.replaceSubrange(4..<8, with: le(VHDX.crc32c(entry, zeroing: 4)))
        return entry
    }
}
