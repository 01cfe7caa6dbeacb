import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// VHD images from qemu-img (vpc) compared with `qemu-img convert -O raw`, and a
/// differencing child built here (qemu-img cannot create one) checked sector by sector.
@Suite struct VHDReaderTests {
    @Test(arguments: ["subformat=dynamic", "subformat=fixed", "subformat=fixed,force_size=on", "subformat=dynamic,force_size=on"])
    func convertedImagesMatchQemu(options: String) throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let seed = UInt64(options.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) })
        print("vhd oracle \(options): seed \(seed)")
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 13 * 1024 * 1024 + 512 * 7, seed: seed)
        let image = dir.file("disk.vhd")
        try Tool.qemu("convert", "-f", "raw", "-O", "vpc", "-o", options, raw, image)
        try Compare.matchesOracle(image, format: "vpc", detected: .vhd, checkMap: options.contains("dynamic"))
    }

    @Test func differencingChildOverlaysParent() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 9 << 20, seed: 12, density: 0.8)
        let parentPath = dir.file("parent.vhd")
        try Tool.qemu("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", raw, parentPath)
        let parent = try FileDevice.openForReading(parentPath)
        let parentFooter = try parent.readBytes(at: parent.size - 512, count: 512)
        let size = parentFooter.bigEndian(UInt64.self, at: 48) ?? 0
        var rng = SeededRandom(seed: 12)
        print("vhd differencing: seed 12")
        var expected = try FileDevice.openForReading(raw).readBytes(at: 0, count: Int(size))
        let child = DifferencingBuilder.build(parentFooter: parentFooter, size: size, rng: &rng, expected: &expected)
        let childPath = dir.file("child.vhd")
        try Data(child).write(to: URL(fileURLWithPath: childPath))
        let disk = try DiskImage.openSource(childPath)
        #expect(disk.size == size)
        #expect(try disk.readBytes(at: 0, count: Int(size)) == expected)
        // A child whose parent id does not match is refused.
        var wrong = child
        wrong[512 + 40] ^= 0xff
        wrong.replaceSubrange(512 + 36..<512 + 40, with: DifferencingBuilder.be32(VHD.checksum(Array(wrong[512..<1536]), skipping: 36)))
        try Data(wrong).write(to: URL(fileURLWithPath: childPath))
        #expect { _ = try DiskImage.openSource(childPath) } throws: { ($0 as? FormatError)?.field == "parent unique id" }
    }
}

/// Builds a differencing VHD over a parent: footer copy, dynamic header with a
/// relative (W2ru) locator, BAT, two blocks with partial sector bitmaps, footer.
enum DifferencingBuilder {
    static let blockSize = 2 << 20

    static func be32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    static func build(parentFooter: [UInt8], size: UInt64, rng: inout SeededRandom, expected: inout [UInt8]) -> [UInt8] {
        var footer = parentFooter
        footer.replaceSubrange(16..<24, with: withUnsafeBytes(of: UInt64(512).bigEndian) { Array($0) })
        footer.replaceSubrange(60..<64, with: be32(4))
        for i in 68..<84 { footer[i] = UInt8.random(in: 0...255, using: &rng) }
        footer.replaceSubrange(64..<68, with: be32(VHD.checksum(footer, skipping: 64)))
        let blocks = Int((size + UInt64(blockSize) - 1) / UInt64(blockSize))
        let batBytes = (blocks * 4 + 511) / 512 * 512
        let locatorOffset = 1536 + batBytes
        let locator = Array("parent.vhd".utf16).flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        var header = ByteWriter()
        header.write(bytes: Array("cxsparse".utf8))
        header.writeBigEndian(UInt64.max)
        header.writeBigEndian(UInt64(1536))
        header.writeBigEndian(UInt32(0x0001_0000))
        header.writeBigEndian(UInt32(blocks))
        header.writeBigEndian(UInt32(blockSize))
        header.writeBigEndian(UInt32(0))  // checksum, set below
        header.write(bytes: parentFooter[68..<84])
        header.writeBigEndian(UInt32(0))  // parent timestamp
        header.writeZeros(4)
        var name = Array("parent.vhd".utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
        name += [UInt8](repeating: 0, count: 512 - name.count)
        header.write(bytes: name)
        header.write(bytes: Array("W2ru".utf8))
        header.writeBigEndian(UInt32(1))
        header.writeBigEndian(UInt32(locator.count))
        header.writeZeros(4)
        header.writeBigEndian(UInt64(locatorOffset))
        header.writeZeros(1024 - header.bytes.count)
        var dynamic = header.bytes
        dynamic.replaceSubrange(36..<40, with: be32(VHD.checksum(dynamic, skipping: 36)))
        var out = footer + dynamic
        var bat = [UInt32](repeating: VHD.unallocated, count: blocks)
        var blockData: [UInt8] = []
        let dataStart = locatorOffset + 512
        for block in [0, blocks - 1] {
            bat[block] = UInt32((dataStart + blockData.count) / 512)
            var bitmap = [UInt8](repeating: 0, count: 512)
            var data = [UInt8](repeating: 0, count: blockSize)
            for sector in 0..<(blockSize / 512) where Int.random(in: 0..<3, using: &rng) == 0 {
                let guest = block * blockSize + sector * 512
                guard UInt64(guest) < size else { continue }
                bitmap[sector / 8] |= 0x80 >> UInt8(sector % 8)
                let fill = UInt8.random(in: 0...255, using: &rng)
                for k in 0..<512 { data[sector * 512 + k] = fill; expected[guest + k] = fill }
            }
            blockData += bitmap + data
        }
        for e in bat { out += be32(e) }
        out += [UInt8](repeating: 0xff, count: batBytes - blocks * 4)
        out += locator + [UInt8](repeating: 0, count: 512 - locator.count)
        out += blockData + footer
        return out
    }
}
