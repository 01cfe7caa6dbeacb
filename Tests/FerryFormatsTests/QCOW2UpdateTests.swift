import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// `DiskImage.openForUpdate` on qcow2 images made by qemu-img: seeded writes go both to
/// the image and to a raw mirror; afterwards `qemu-img check` must find no error and no
/// leak, and `qemu-img compare` must call the image and the mirror identical.
@Suite struct QCOW2UpdateTests {
    /// A qcow2 image converted by qemu-img from a seeded raw file (holes, data, zeros),
    /// and a raw mirror of it to apply the same writes to.
    static func makeImage(in dir: TempDir, size: UInt64, seed: UInt64, options: [String] = []) throws -> (image: String, mirror: String) {
        let mirror = dir.file("mirror.raw")
        try RawFixture.make(mirror, size: size, seed: seed)
        let image = dir.file("disk.qcow2")
        try Tool.run(Tool.qemuImg, ["convert", "-f", "raw", "-O", "qcow2"] + options + [mirror, image])
        return (image, mirror)
    }

    /// Seeded writes of 1 byte to 300 KiB (straddling clusters), some all-zero and some
    /// through `writeZeros`, applied to both devices.
    static func scribble(_ disk: any BlockDevice, _ mirror: any BlockDevice, seed: UInt64, count: Int) throws {
        var rng = SeededRandom(seed: seed)
        for _ in 0..<count {
            let length = Int(UInt64.random(in: 1...300_000, using: &rng) >> UInt64.random(in: 0...12, using: &rng)) + 1
            let offset = UInt64.random(in: 0...(disk.size - UInt64(length)), using: &rng)
            switch rng.next() % 5 {
            case 0:
                try disk.writeZeros(at: offset, length: UInt64(length), mayDiscard: true)
                try mirror.writeZeros(at: offset, length: UInt64(length), mayDiscard: false)
            case 1:
                let zeros = [UInt8](repeating: 0, count: length)
                try zeros.withUnsafeBytes { try disk.write($0, at: offset) }
                try zeros.withUnsafeBytes { try mirror.write($0, at: offset) }
            default:
                var bytes = [UInt8](repeating: 0, count: length)
                for i in 0..<length { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
                try bytes.withUnsafeBytes { try disk.write($0, at: offset) }
                try bytes.withUnsafeBytes { try mirror.write($0, at: offset) }
            }
        }
    }

    static func expectClean(_ image: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        // qemu-img check: 0 = no errors and no leaks, 2 = corruption, 3 = leaks.
        let check = try Tool.run(Tool.qemuImg, ["check", "-f", "qcow2", image], expectSuccess: false)
        #expect(check.status == 0, "qemu-img check: \(check.output)", sourceLocation: sourceLocation)
    }

    static func expectSame(_ image: String, _ raw: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let compare = try Tool.run(Tool.qemuImg, ["compare", "-f", "qcow2", "-F", "raw", image, raw], expectSuccess: false)
        #expect(compare.status == 0, "qemu-img compare: \(compare.output)", sourceLocation: sourceLocation)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var seed: UInt64
        var options: [String]
        var testDescription: String { "seed \(seed) \(options.joined(separator: " "))" }
    }

    @Test(arguments: [
        Case(seed: 1, options: []),
        Case(seed: 2, options: ["-o", "cluster_size=4096"]),
        Case(seed: 3, options: ["-o", "compat=0.10"]),
        Case(seed: 4, options: ["-o", "cluster_size=2M"]),
        Case(seed: 5, options: ["-o", "lazy_refcounts=on"]),
    ])
    func seededWritesMatchARawMirror(_ c: Case) throws {
        guard Tool.haveQemuImg() else { return }
        print("qcow2 update: \(c.testDescription)")
        let dir = try TempDir()
        let (image, mirrorPath) = try Self.makeImage(in: dir, size: 24 << 20 + 4096 * c.seed, seed: c.seed, options: c.options)
        let (disk, format) = try DiskImage.openForUpdate(image)
        #expect(format == .qcow2)
        #expect(disk.size == 24 << 20 + 4096 * c.seed)
        let mirror = try FileDevice.openForWriting(mirrorPath)
        try Self.scribble(disk, mirror, seed: c.seed, count: 150)
        // Read back before the flush: the in-memory metadata answers.
        #expect(try Compare.firstDifference(disk, rawPath: mirrorPath) == nil)
        try disk.flush()
        try Self.expectClean(image)
        try Self.scribble(disk, mirror, seed: c.seed + 100, count: 150)
        try disk.flush()
        try disk.close()
        try mirror.close()
        try Self.expectClean(image)
        try Self.expectSame(image, mirrorPath)
        #expect(try Compare.firstDifference(DiskImage.openSource(image), rawPath: mirrorPath) == nil)
    }

    /// Small clusters over a disk larger than the refcount table qemu-img made can count:
    /// writes all over it grow the table (moved to the end of the file, the header pointing
    /// at it) and add refcount blocks; check and compare stay clean, in one session and the next.
    /// (4 KiB clusters on 20 GiB: the table covers 4 GiB of file, so it does not move here; the
    /// image was refused outright before the table could grow.)
    @Test(arguments: [(512, UInt64(48 << 20), true), (4096, UInt64(20 << 30), false)])
    func smallClustersGrowTheRefcountTable(_ cluster: Int, _ size: UInt64, _ moves: Bool) throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let image = dir.file("disk.qcow2")
        try Tool.qemu("create", "-q", "-f", "qcow2", "-o", "cluster_size=\(cluster)", image, String(size))
        let mirrorPath = dir.file("mirror.raw")
        let mirror = try FileDevice.create(mirrorPath, size: size)
        let tableBefore = try FileDevice.openForReading(image).readBytes(at: 48, count: 12)
        for session in 0..<2 {
            let (disk, _) = try DiskImage.openForUpdate(image)
            try Self.scribble(disk, mirror, seed: UInt64(cluster + session), count: moves ? 600 : 100)
            try disk.flush()
            try disk.close()
            try Self.expectClean(image)
        }
        try mirror.close()
        #expect(try (FileDevice.openForReading(image).readBytes(at: 48, count: 12) != tableBefore) == moves, "the refcount table moved: \(!moves)")
        try Self.expectSame(image, mirrorPath)
    }

    /// Writes after `qemu-img snapshot -c` copy every shared cluster (and shared L2 table)
    /// first: the active disk changes, and applying the snapshot gives back the original.
    @Test func snapshotClustersAreCopiedOnWrite() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let (image, mirrorPath) = try Self.makeImage(in: dir, size: 20 << 20, seed: 11)
        let original = dir.file("original.raw")
        try FileManager.default.copyItem(atPath: mirrorPath, toPath: original)
        try Tool.qemu("snapshot", "-c", "before", image)
        let (disk, _) = try DiskImage.openForUpdate(image)
        let mirror = try FileDevice.openForWriting(mirrorPath)
        try Self.scribble(disk, mirror, seed: 11, count: 200)
        try disk.flush()
        try disk.close()
        try Self.expectClean(image)
        try Self.expectSame(image, mirrorPath)
        // A second session: clusters copied in the first now have refcount 1 and are written in place.
        let (again, _) = try DiskImage.openForUpdate(image)
        try Self.scribble(again, mirror, seed: 12, count: 50)
        try again.flush()
        try again.close()
        try Self.expectClean(image)
        try Self.expectSame(image, mirrorPath)
        try Tool.qemu("snapshot", "-a", "before", image)
        try Self.expectClean(image)
        try Self.expectSame(image, original)
    }

    /// Compressed clusters (qemu-img convert -c, deflate and zstd) are inflated into new
    /// clusters; their host clusters lose their references, which check counts as clean.
    @Test(arguments: ["zlib", "zstd"])
    func compressedClustersAreRewritten(_ type: String) throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let (image, mirrorPath) = try Self.makeImage(in: dir, size: 16 << 20, seed: 21, options: ["-c", "-o", "compression_type=\(type)"])
        let (disk, _) = try DiskImage.openForUpdate(image)
        let mirror = try FileDevice.openForWriting(mirrorPath)
        try Self.scribble(disk, mirror, seed: 21, count: 200)
        try disk.flush()
        try disk.close()
        try Self.expectClean(image)
        try Self.expectSame(image, mirrorPath)
    }

    /// An overlay: unallocated clusters are copied up from the backing file, which is never written.
    @Test func anOverlayIsWrittenAndItsBackingFileIsNot() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let base = dir.file("base.raw")
        try RawFixture.make(base, size: 12 << 20, seed: 31)
        let pristine = dir.file("pristine.raw")
        try FileManager.default.copyItem(atPath: base, toPath: pristine)
        let mirrorPath = dir.file("mirror.raw")
        try FileManager.default.copyItem(atPath: base, toPath: mirrorPath)
        let overlay = dir.file("overlay.qcow2")
        try Tool.qemu("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay)
        let (disk, format) = try DiskImage.openForUpdate(overlay)
        #expect(format == .qcow2)
        #expect(DiskImage.backingFile(ofUpdated: disk) == "base.raw")
        let mirror = try FileDevice.openForWriting(mirrorPath)
        try Self.scribble(disk, mirror, seed: 31, count: 150)
        try disk.flush()
        try disk.close()
        try Self.expectClean(overlay)
        try Self.expectSame(overlay, mirrorPath)
        #expect(FileManager.default.contentsEqual(atPath: base, andPath: pristine), "the backing file changed")
    }

    /// A write that is never flushed (a crash) leaves an image check accepts: new clusters
    /// are appended past every referenced one and referenced by nothing on disk.
    @Test func anUnflushedSessionLeavesAConsistentImage() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let (image, mirrorPath) = try Self.makeImage(in: dir, size: 8 << 20, seed: 41)
        let (disk, _) = try DiskImage.openForUpdate(image)
        let mirror = try FileDevice.openForWriting(mirrorPath)
        try Self.scribble(disk, mirror, seed: 41, count: 80)
        let updater = try #require(disk as? QCOW2.Updater)
        #expect(updater.allocatedClusters > 0)
        try disk.close()  // no flush
        let check = try Tool.run(Tool.qemuImg, ["check", "-f", "qcow2", image], expectSuccess: false)
        #expect(check.status == 0 || check.status == 3, "qemu-img check after a crash: \(check.output)")
    }
}
