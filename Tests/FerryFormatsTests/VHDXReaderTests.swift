import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// VHDX images from qemu-img compared with `qemu-img convert -O raw`.
@Suite struct VHDXReaderTests {
    @Test(arguments: ["subformat=dynamic", "subformat=fixed", "subformat=dynamic,block_size=1M",
                      "subformat=dynamic,block_state_zero=off", "subformat=dynamic,log_size=1M"])
    func convertedImagesMatchQemu(options: String) throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let seed = UInt64(options.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) })
        print("vhdx oracle \(options): seed \(seed)")
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 19 * 1024 * 1024 + 512 * 3, seed: seed)
        let image = dir.file("disk.vhdx")
        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", "-o", options, raw, image)
        try Compare.matchesOracle(image, format: "vhdx", detected: .vhdx, checkMap: !options.contains("fixed"))
    }

    /// Beyond one chunk (2^23 sectors = 4 GiB with 512-byte sectors) the BAT interleaves
    /// a sector-bitmap entry; a reader that forgets it only fails on large disks.
    @Test func blocksBeyondTheFirstChunk() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("big.raw")
        let size: UInt64 = (9 << 30) + (5 << 20)
        _ = FileManager.default.createFile(atPath: raw, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        try handle.truncate(atOffset: size)
        try handle.close()
        var rng = SeededRandom(seed: 99)
        print("vhdx >4GiB: seed 99")
        var marks: [(UInt64, [UInt8])] = []
        for at: UInt64 in [4096, (4 << 30) + 1000, (8 << 30) + 70_000, size - 4096] {
            let bytes = (0..<3000).map { _ in UInt8.random(in: 1...255, using: &rng) }
            try RawFixture.poke(raw, at: at, bytes)
            marks.append((at, bytes))
        }
        let image = dir.file("big.vhdx")
        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, image)
        let disk = try DiskImage.openSource(image)
        #expect(disk.size == size)
        for (at, bytes) in marks { #expect(try disk.readBytes(at: at, count: bytes.count) == bytes, "at \(at)") }
        let data = try disk.extents(at: 0, length: size).filter { $0.kind == .data }.reduce(0) { $0 + $1.length }
        #expect(data <= 8 << 20)
    }

    @Test func differencingChildOverQemuParent() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        let size = 7 * 1024 * 1024 + 512 * 5
        try RawFixture.make(raw, size: UInt64(size), seed: 81, density: 0.9)
        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, dir.file("parent.vhdx"))
        let parentFile = try FileDevice.openForReading(dir.file("parent.vhdx"))
        let headers = try [65536, 131072].map { try VHDX.Header(parsing: parentFile.readBytes(at: UInt64($0), count: 4096), baseOffset: UInt64($0)) }
        let current = headers.max(by: { $0.sequence < $1.sequence })
        var expected = try FileDevice.openForReading(raw).readBytes(at: 0, count: size)
        var rng = SeededRandom(seed: 81)
        print("vhdx differencing: seed 81")
        let child = VHDXDifferencingBuilder.build(size: size, parentDataWriteGUID: current?.dataWriteGUID ?? [],
                                                  relativePath: ".\\parent.vhdx", rng: &rng, expected: &expected)
        try Data(child).write(to: URL(fileURLWithPath: dir.file("child.vhdx")))
        let disk = try DiskImage.openSource(dir.file("child.vhdx"))
        #expect(disk.size == UInt64(size))
        #expect(Bytes.equal(try disk.readBytes(at: 0, count: size), expected))
        let kinds = Set(try disk.extents(at: 0, length: disk.size).map(\.kind))
        #expect(kinds.contains(.zero) && kinds.contains(.data))
        // A parent whose data write GUID changed (it was written after the snapshot) is refused.
        var other = SeededRandom(seed: 82)
        var ignored = expected
        let stale = VHDXDifferencingBuilder.build(size: size, parentDataWriteGUID: [UInt8](repeating: 7, count: 16),
                                                  relativePath: "parent.vhdx", rng: &other, expected: &ignored)
        try Data(stale).write(to: URL(fileURLWithPath: dir.file("child.vhdx")))
        #expect { _ = try DiskImage.openSource(dir.file("child.vhdx")) } throws: { ($0 as? FormatError)?.field == "parent_linkage" }
    }

    /// A dirty log (one entry: two new payload pages, a BAT page, a zeroed range) is
    /// replayed in memory; the oracle is qemu-img after `check -r all` on a copy.
    @Test func dirtyLogIsReplayedInMemory() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 8 << 20, seed: 91, density: 0.7)
        try RawFixture.poke(raw, at: 3 << 20, [UInt8](repeating: 0, count: 1 << 20))  // block 3 stays unallocated
        let clean = dir.file("clean.vhdx")
        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, clean)
        var rng = SeededRandom(seed: 91)
        print("vhdx dirty log: seed 91")
        guard let built = try VHDXLogBuilder.dirty(clean: try Data(contentsOf: URL(fileURLWithPath: clean)).map { $0 }, rng: &rng) else {
            Issue.record("the fixture needs one present and one absent block")
            return
        }
        let (bytes, k, j, pageA) = built
        let dirty = dir.file("dirty.vhdx")
        try Data(bytes).write(to: URL(fileURLWithPath: dirty))
        let source = try Data(contentsOf: URL(fileURLWithPath: dirty))

        // Oracle: qemu replays the log on a copy, then converts.
        let repaired = dir.file("repaired.vhdx")
        try Data(bytes).write(to: URL(fileURLWithPath: repaired))
        try Tool.run(Tool.qemuImg, ["check", "-r", "all", "-f", "vhdx", repaired], expectSuccess: false)
        let oracle = dir.file("oracle.raw")
        try Tool.qemu("convert", "-f", "vhdx", "-O", "raw", repaired, oracle)
        let disk = try DiskImage.openSource(dirty)
        #expect(try Compare.firstDifference(disk, rawPath: oracle) == nil)
        let expectedA = try disk.readBytes(at: UInt64(k << 20), count: 4096)
        #expect(expectedA == pageA, "the replayed BAT must point block \(k) at the logged page")
        #expect(try disk.readBytes(at: UInt64(j << 20) + 65536, count: 8192) == [UInt8](repeating: 0, count: 8192))
        // The source file itself is untouched.
        #expect(try Data(contentsOf: URL(fileURLWithPath: dirty)) == source)
    }
}

