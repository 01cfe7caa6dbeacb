import FerryBinary
import Foundation

@testable import FerryFormats

/// Builds a differencing VHDX ([MS-VHDX]) over a parent, which qemu-img cannot
/// create: identifier, two CRC-checked headers and region tables, an empty log, a BAT
/// with FULLY_PRESENT, PARTIALLY_PRESENT (sector bitmap), ZERO, UNMAPPED and
/// NOT_PRESENT blocks, and metadata with a parent locator. 1 MiB blocks, 512-byte sectors.
enum VHDXDifferencingBuilder {
    static let mib = 1 << 20
    static let blockSize = 1 << 20
    static let chunkRatio = 4096  // 2^23 * 512 / 1 MiB

    /// `expected` starts as the parent's bytes and is overlaid with what the child stores.
    static func build(size: Int, parentDataWriteGUID: [UInt8], relativePath: String, rng: inout SeededRandom,
                      expected: inout [UInt8]) -> [UInt8] {
        var file = [UInt8](repeating: 0, count: 7 * mib)
        func put(_ bytes: [UInt8], at offset: Int) {
            if offset + bytes.count > file.count { file += [UInt8](repeating: 0, count: offset + bytes.count - file.count) }
            file.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func crcd(_ bytes: [UInt8]) -> [UInt8] {
            var b = bytes
            b.replaceSubrange(4..<8, with: le(VHDX.crc32c(b, zeroing: 4)))
            return b
        }
        put(Array("vhdxfile".utf8), at: 0)
        let dataWrite = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for (i, at) in [64 * 1024, 128 * 1024].enumerated() {
            var h = Array("head".utf8) + le(UInt32(0)) + le(UInt64(i + 1))
            h += (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) } + dataWrite + [UInt8](repeating: 0, count: 16)
            h += le(UInt16(0)) + le(UInt16(1)) + le(UInt32(mib)) + le(UInt64(mib))
            put(crcd(h + [UInt8](repeating: 0, count: 4096 - h.count)), at: at)
        }
        var regions = Array("regi".utf8) + le(UInt32(0)) + le(UInt32(2)) + le(UInt32(0))
        regions += VHDX.Region.bat + le(UInt64(2 * mib)) + le(UInt32(mib)) + le(UInt32(1))
        regions += VHDX.Region.metadata + le(UInt64(3 * mib)) + le(UInt32(mib)) + le(UInt32(1))
        let table = crcd(regions + [UInt8](repeating: 0, count: 65536 - regions.count))
        put(table, at: 192 * 1024)
        put(table, at: 256 * 1024)
        // Metadata: table, then items at 64 KiB steps inside the region.
        let locator = locatorBytes(["parent_linkage": "{" + guidText(parentDataWriteGUID) + "}", "relative_path": relativePath])
        let items: [([UInt8], [UInt8], UInt32)] = [
            (VHDX.Item.fileParameters, le(UInt32(blockSize)) + le(UInt32(2)), 4),
            (VHDX.Item.virtualDiskSize, le(UInt64(size)), 6),
            (VHDX.Item.logicalSectorSize, le(UInt32(512)), 6),
            (VHDX.Item.physicalSectorSize, le(UInt32(4096)), 6),
            (VHDX.Item.parentLocator, locator, 4),
        ]
        var meta = Array("metadata".utf8) + le(UInt16(0)) + le(UInt16(items.count)) + [UInt8](repeating: 0, count: 20)
        for (i, item) in items.enumerated() {
            meta += item.0 + le(UInt32((i + 1) * 65536)) + le(UInt32(item.1.count)) + le(item.2) + le(UInt32(0))
            put(item.1, at: 3 * mib + (i + 1) * 65536)
        }
        put(meta, at: 3 * mib)
        // Blocks: 0 full, 1 and 5 partial, 2 zero, 3 unmapped, the rest from the parent.
        let blocks = (size + blockSize - 1) / blockSize
        var bat = [UInt64](repeating: 0, count: chunkRatio + 1)
        var bitmap = [UInt8](repeating: 0, count: mib)
        var nextMB = 7
        for block in 0..<blocks {
            let start = block * blockSize
            let end = min(size, start + blockSize)
            switch block {
            case 0, 1, 5:
                let data = (0..<blockSize).map { _ in UInt8.random(in: 0...255, using: &rng) }
                put(data, at: nextMB * mib)
                bat[block] = UInt64(nextMB) << 20 | (block == 0 ? 6 : 7)
                nextMB += 1
                for sector in 0..<(end - start) / 512 where block == 0 || Int.random(in: 0..<2, using: &rng) == 0 {
                    let bit = (block % chunkRatio) * (blockSize / 512) + sector
                    bitmap[bit / 8] |= 1 << UInt8(bit % 8)
                    expected.replaceSubrange(start + sector * 512..<start + sector * 512 + 512,
                                             with: data[sector * 512..<sector * 512 + 512])
                }
            case 2, 3:
                bat[block] = block == 2 ? 2 : 3
                expected.replaceSubrange(start..<end, with: [UInt8](repeating: 0, count: end - start))
            default: break
            }
        }
        put(bitmap, at: 6 * mib)
        bat[chunkRatio] = UInt64(6) << 20 | 6  // the chunk's sector bitmap, present
        put(bat.flatMap { le($0) }, at: 2 * mib)
        return file
    }

    static func locatorBytes(_ pairs: [String: String]) -> [UInt8] {
        func utf16(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } }
        var header = VHDX.guid("B04AEFB7-D19E-4A81-B789-25B8E9445913") + [0, 0]
        header += withUnsafeBytes(of: UInt16(pairs.count).littleEndian) { Array($0) }
        var strings: [UInt8] = []
        var entries: [UInt8] = []
        let base = header.count + pairs.count * 12
        for (key, value) in pairs.sorted(by: { $0.key < $1.key }) {
            let k = utf16(key), v = utf16(value)
            let keyAt = base + strings.count
            strings += k
            let valueAt = base + strings.count
            strings += v
            for x in [UInt32(keyAt), UInt32(valueAt)] { entries += withUnsafeBytes(of: x.littleEndian) { Array($0) } }
            for x in [UInt16(k.count), UInt16(v.count)] { entries += withUnsafeBytes(of: x.littleEndian) { Array($0) } }
        }
        return header + entries + strings
    }

    /// The text form of on-disk GUID bytes (inverse of `VHDX.guid`).
    static func guidText(_ b: [UInt8]) -> String {
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        return order.map { $0 < 0 ? "-" : String(format: "%02X", b[$0]) }.joined()
    }
}
