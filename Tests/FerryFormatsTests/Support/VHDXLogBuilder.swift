import FerryBinary
import Foundation

@testable import FerryFormats

/// Makes a clean qemu VHDX (1 MiB blocks) dirty: one log entry, under a new log GUID
/// in the current header, that allocates an absent block `k` (two data pages, the
/// BAT page), zeroes 8 KiB inside present block `j`, and covers the rest of the new
/// block with a zero descriptor. [MS-VHDX] 2.3.
enum VHDXLogBuilder {
    static func dirty(clean: [UInt8], rng: inout SeededRandom) throws -> (bytes: [UInt8], k: Int, j: Int, pageA: [UInt8])? {
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
        var descriptors: [UInt8] = []
        var dataSectors: [UInt8] = []
        for (page, at) in [(pageA, newBlock), (pageB, newBlock + 8192), (batPage, Int(batOffset))] {
            descriptors += Array("desc".utf8) + Array(page[4092..<4096]) + Array(page[0..<8]) + le(UInt64(at)) + le(sequence)
            dataSectors += Array("data".utf8) + le(UInt32(sequence >> 32)) + Array(page[8..<4092]) + le(UInt32(truncatingIfNeeded: sequence))
        }
        descriptors += Array("zero".utf8) + le(UInt32(0)) + le(UInt64(8192)) + le(UInt64(zeroAt)) + le(sequence)
        // The rest of the new block, so the file covers it (qemu does not grow to LastFileOffset).
        descriptors += Array("zero".utf8) + le(UInt32(0)) + le(UInt64(mib - 12288)) + le(UInt64(newBlock + 12288)) + le(sequence)
        var entry = Array("loge".utf8) + le(UInt32(0)) + le(UInt32(4096 + dataSectors.count)) + le(UInt32(0)) + le(sequence)
        entry += le(UInt32(5)) + le(UInt32(0)) + guid + le(UInt64(bytes.count)) + le(UInt64(newBlock + mib))
        entry += descriptors
        entry += [UInt8](repeating: 0, count: 4096 - entry.count) + dataSectors
        entry.replaceSubrange(4..<8, with: le(VHDX.crc32c(entry, zeroing: 4)))
        bytes.replaceSubrange(Int(current.logOffset)..<Int(current.logOffset) + entry.count, with: entry)
        var header = Array(bytes[Int(current.offset)..<Int(current.offset) + 4096])
        header.replaceSubrange(48..<64, with: guid)
        header.replaceSubrange(4..<8, with: le(VHDX.crc32c(header, zeroing: 4)))
        bytes.replaceSubrange(Int(current.offset)..<Int(current.offset) + 4096, with: header)
        return (bytes, k, j, pageA)
    }
}
