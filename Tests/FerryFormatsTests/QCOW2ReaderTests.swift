import FerryBinary
import FerryDisk
import Foundation
import FerryTestSupport
import Testing

@testable import FerryFormats

/// qcow2 images built by qemu-img from seeded raw data, read through ferry and
/// compared byte for byte with `qemu-img convert -O raw`.
@Suite struct QCOW2ReaderTests {
    /// Converts `raw` with `options`, opens the result with ferry and checks bytes and extents.
    func roundTrip(_ dir: TempDir, raw: String, name: String, options: [String]) throws {
        let image = dir.file(name)
        try Tool.run(Tool.qemuImg, ["convert", "-f", "raw", "-O", "qcow2"] + options + [raw, image])
        try expectMatchesOracle(dir, image: image, format: "qcow2")
    }

    func expectMatchesOracle(_ dir: TempDir, image: String, format: String, checkMap: Bool = true) throws {
        try Compare.matchesOracle(image, format: format, detected: .qcow2, checkMap: checkMap)
    }

    @Test(arguments: [
        ("v2.qcow2", ["-o", "compat=0.10"]),
        ("v3.qcow2", ["-o", "compat=1.1"]),
        ("v3-4k.qcow2", ["-o", "compat=1.1,cluster_size=4096"]),
        ("v3-2m.qcow2", ["-o", "compat=1.1,cluster_size=2M"]),
        ("deflate.qcow2", ["-c", "-o", "compat=1.1"]),
        ("deflate-v2.qcow2", ["-c", "-o", "compat=0.10,cluster_size=4096"]),
        ("zstd.qcow2", ["-c", "-o", "compat=1.1,compression_type=zstd"]),
        ("extl2.qcow2", ["-o", "compat=1.1,extended_l2=on,cluster_size=128k"]),
        ("refcount1.qcow2", ["-o", "compat=1.1,refcount_bits=1,lazy_refcounts=on"]),
    ])
    func convertedImagesMatchQemu(name: String, options: [String]) throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let seed = UInt64(name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) })
        print("qcow2 oracle \(name): seed \(seed)")
        let raw = dir.file("src.raw")
        // 23 MiB + 4567 bytes: not a multiple of any cluster size.
        try RawFixture.make(raw, size: 23 * 1024 * 1024 + 4567, seed: seed)
        try roundTrip(dir, raw: raw, name: name, options: options)
    }

    @Test func zeroClustersAndSubclusterWritesMatchQemu() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let image = dir.file("z.qcow2")
        let base = dir.file("base.raw")
        try RawFixture.make(base, size: 8 << 20, seed: 11, density: 1.0)
        for (name, ext) in [("z.qcow2", "off"), ("zx.qcow2", "on")] {
            let image = dir.file(name)
            let cluster = ext == "on" ? "128k" : "64k"
            try Tool.qemu("create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", "-o", "extended_l2=\(ext),cluster_size=\(cluster)", image, "8M")
            let io = "/usr/bin/qemu-io"
            guard FileManager.default.isExecutableFile(atPath: io) else { Skip.because("qemu-io missing"); return }
            try Tool.run(io, ["-f", "qcow2", "-c", "write -P 0x55 1M 64k", "-c", "write -z 0 128k",
                              "-c", "write -P 0x66 3M 4k", "-c", "write -z 5M 8k", "-c", "write -z 7M 1M", image])
            let disk = try DiskImage.openSource(image)
            let extents = try disk.extents(at: 0, length: disk.size)
            #expect(extents.contains { $0.kind == .zero && $0.offset <= 7 << 20 && $0.end >= 8 << 20 }, "\(extents)")
            try expectMatchesOracle(dir, image: image, format: "qcow2", checkMap: false)
        }
        _ = image
    }

    @Test func backingChainResolvesRelativeNames() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: true)
        let raw = dir.file("sub/base.raw")
        try RawFixture.make(raw, size: 6 << 20, seed: 5, density: 0.8)
        try Tool.qemu("convert", "-f", "raw", "-O", "qcow2", raw, dir.file("sub/base.qcow2"))
        // mid overlays base with a relative name; top overlays mid, larger than both.
        try Tool.qemu("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir.file("sub/mid.qcow2"), "6M")
        try Tool.qemu("create", "-q", "-f", "qcow2", "-b", "sub/mid.qcow2", "-F", "qcow2", dir.file("top.qcow2"), "9M")
        if Tools.require("qemu-io", why: "writes the overlay's data") {
            try Tool.run("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -P 0x77 2M 100k", dir.file("sub/mid.qcow2")])
            try Tool.run("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -P 0x88 2050k 10k", "-c", "write -z 4M 64k", "-c", "write -P 1 8M 4k", dir.file("top.qcow2")])
        }
        try expectMatchesOracle(dir, image: dir.file("top.qcow2"), format: "qcow2", checkMap: false)
    }

    @Test func sparseImageAbove4GiB() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("big.raw")
        let size: UInt64 = (5 << 30) + 12345
        _ = FileManager.default.createFile(atPath: raw, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        try handle.truncate(atOffset: size)
        try handle.close()
        var rng = SeededRandom(seed: 4242)
        print("qcow2 >4GiB: seed 4242")
        var marks: [(UInt64, [UInt8])] = []
        for at: UInt64 in [0, 1 << 30, (4 << 30) - 3000, (4 << 30) + 77777, size - 5000] {
            let bytes = (0..<4000).map { _ in UInt8.random(in: 1...255, using: &rng) }
            try RawFixture.poke(raw, at: at, bytes)
            marks.append((at, bytes))
        }
        let image = dir.file("big.qcow2")
        try Tool.qemu("convert", "-f", "raw", "-O", "qcow2", raw, image)
        let disk = try DiskImage.openSource(image)
        #expect(disk.size == (size + 511) / 512 * 512)  // qemu-img rounds up to sectors
        for (at, bytes) in marks { #expect(try disk.readBytes(at: at, count: bytes.count) == bytes) }
        let extents = try disk.extents(at: 0, length: size)
        let data = extents.filter { $0.kind == .data }.reduce(0) { $0 + $1.length }
        #expect(data <= 10 * 65536, "only the marked clusters are data, got \(data) bytes in \(extents.count) extents")
        // Every byte outside the data extents reads as zero: check the raw oracle agrees there.
        let rawDevice = try FileDevice.openForReading(raw)
        for e in extents where e.kind == .data {
            let n = Int(min(e.length, rawDevice.size - e.offset))
            #expect(try Bytes.equal(disk.readBytes(at: e.offset, count: n), rawDevice.readBytes(at: e.offset, count: n)))
        }
        try Compare.checkExtents(disk, imagePath: image, format: "qcow2")
    }
}
