import FerryBinary
import FerryDisk
import Foundation
import FerryTestSupport
import Testing

@testable import FerryFormats

/// VMDK images built by qemu-img (and hand-written descriptors) from seeded raw
/// data, read through ferry and compared with `qemu-img convert -O raw`.
@Suite struct VMDKReaderTests {
    func expectMatchesOracle(_ image: String, checkMap: Bool = true) throws {
        try Compare.matchesOracle(image, format: "vmdk", detected: .vmdk, checkMap: checkMap)
    }

    @Test(arguments: ["monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"])
    func convertedImagesMatchQemu(subformat: String) throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let seed = UInt64(subformat.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) })
        print("vmdk oracle \(subformat): seed \(seed)")
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 21 * 1024 * 1024 + 999, seed: seed)
        let image = dir.file("disk.vmdk")
        try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=\(subformat)", raw, image)
        // Flat extents have no allocation map of their own beyond the file's holes.
        try expectMatchesOracle(image, checkMap: !subformat.hasSuffix("Flat"))
    }

    @Test func splitSparseAcrossTwoGiBBoundary() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("big.raw")
        let size: UInt64 = (4 << 30) + 3 * 1024 * 1024 + 511  // not a grain multiple, > 4 GiB
        _ = FileManager.default.createFile(atPath: raw, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        try handle.truncate(atOffset: size)
        try handle.close()
        var rng = SeededRandom(seed: 77)
        print("vmdk >4GiB: seed 77")
        var marks: [(UInt64, [UInt8])] = []
        for at: UInt64 in [100, (2 << 30) - 1000, (4 << 30) + 5, size - 3000] {
            let bytes = (0..<2500).map { _ in UInt8.random(in: 1...255, using: &rng) }
            try RawFixture.poke(raw, at: at, bytes)
            marks.append((at, bytes))
        }
        for sub in ["twoGbMaxExtentSparse", "streamOptimized"] {
            let image = dir.file("\(sub).vmdk")
            try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=\(sub)", raw, image)
            let disk = try DiskImage.openSource(image)
            #expect(disk.size == (size + 511) / 512 * 512)  // VMDK counts whole sectors
            for (at, bytes) in marks { #expect(try disk.readBytes(at: at, count: bytes.count) == bytes, "\(sub) at \(at)") }
            let extents = try disk.extents(at: 0, length: size)
            let data = extents.filter { $0.kind == .data }.reduce(0) { $0 + $1.length }
            #expect(data <= 8 * 65536, "\(sub): \(data) data bytes")
        }
    }

    @Test func esxiStyleVMFSDescriptorWithOffsetsAndZeroExtent() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("vm-flat.vmdk")
        try RawFixture.make(raw, size: 8 << 20, seed: 3, density: 0.9)
        let second = dir.file("vm-f002.vmdk")
        try RawFixture.make(second, size: 3 << 20, seed: 4, density: 0.9)
        // 8 MiB VMFS extent, 1 MiB ZERO extent, then 2 MiB of a FLAT file starting 1 MiB in.
        let descriptor = """
            # Disk DescriptorFile\r
            version=1\r
            encoding="UTF-8"\r
            CID=fffffffe\r
            parentCID=ffffffff\r
            createType="vmfs"\r
            \r
            RW 16384 VMFS "vm-flat.vmdk"\r
            RW 2048 ZERO\r
            RDONLY 4096 FLAT "vm-f002.vmdk" 2048\r
            \r
            ddb.adapterType = "lsilogic"\r
            """
        try descriptor.write(toFile: dir.file("vm.vmdk"), atomically: true, encoding: .utf8)
        let disk = try DiskImage.openSource(dir.file("vm.vmdk"))
        #expect(disk.size == 11 << 20)
        let flat = try FileDevice.openForReading(raw)
        let f2 = try FileDevice.openForReading(second)
        #expect(try disk.readBytes(at: 0, count: 8 << 20) == flat.readBytes(at: 0, count: 8 << 20))
        #expect(try disk.readBytes(at: 8 << 20, count: 1 << 20) == [UInt8](repeating: 0, count: 1 << 20))
        #expect(try disk.readBytes(at: 9 << 20, count: 2 << 20) == f2.readBytes(at: 1 << 20, count: 2 << 20))
        let extents = try disk.extents(at: 0, length: disk.size)
        #expect(extents.contains { $0.kind == .zero && $0.offset == 8 << 20 && $0.length == 1 << 20 })
    }

    @Test func snapshotChainChecksParentCID() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 5 << 20, seed: 21, density: 0.7)
        try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", raw, dir.file("base.vmdk"))
        try Tool.qemu("create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", dir.file("child.vmdk"))
        if Tools.require("qemu-io", why: "writes the overlay's data") {
            try Tool.run("/usr/bin/qemu-io", ["-f", "vmdk", "-c", "write -P 0x31 1M 200k", "-c", "write -P 0x32 4M 64k", dir.file("child.vmdk")])
        }
        try expectMatchesOracle(dir.file("child.vmdk"), checkMap: false)
        // Changing the parent's CID (as a write to the parent would) must be refused.
        let base = try FileDevice.openForReading(dir.file("base.vmdk"))
        let head = try base.readBytes(at: 512, count: 1024)
        let text = String(decoding: head, as: UTF8.self)
        guard let range = text.range(of: "CID=") else { Issue.record("no CID in the embedded descriptor"); return }
        let at = UInt64(text.utf8.distance(from: text.startIndex, to: range.upperBound)) + 512
        // qemu writes the CID unpadded ("%x"), so keep its length: a longer value would
        // overwrite the newline (and did, one run in sixteen).
        let old = text[range.upperBound...].prefix { $0.isHexDigit }
        var replacement = String(repeating: "b", count: old.count)
        if replacement == old { replacement = String(repeating: "c", count: old.count) }
        try RawFixture.poke(dir.file("base.vmdk"), at: at, Array(replacement.utf8))
        #expect {
            _ = try DiskImage.openSource(dir.file("child.vmdk"))
        } throws: { error in
            (error as? FormatError)?.field == "parentCID"
        }
    }

    @Test func vmwareDialectStreamWithFooter() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        // 40 MiB + 300 bytes: two grain tables, a short last grain, a size that is not a sector multiple.
        try RawFixture.make(raw, size: 40 * 1024 * 1024 + 300, seed: 8, density: 0.5)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: raw)).map { $0 }
        bytes += [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
        try Data(bytes).write(to: URL(fileURLWithPath: raw))
        let image = dir.file("stream.vmdk")
        try Data(VMwareStreamBuilder.build(from: bytes)).write(to: URL(fileURLWithPath: image))
        // The oracle must accept the builder's output before ferry is judged against it.
        let compare = try Tool.run(Tool.qemuImg, ["compare", "-f", "vmdk", "-F", "raw", image, raw], expectSuccess: false)
        #expect(compare.status == 0, "qemu-img compare: \(compare.output)")
        try expectMatchesOracle(image)
    }
}

