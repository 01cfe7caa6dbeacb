import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// What `DiskImage.openForUpdate` refuses, and that a refusal writes nothing; and a
/// mutation test: a damaged image is refused or updated into one `qemu-img check` accepts.
@Suite struct QCOW2UpdateRefusalTests {
    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// Expects `openForUpdate` to refuse `image` with a message containing `phrase`, and the
    /// file to be byte for byte what it was.
    static func expectRefused(_ image: String, _ phrase: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try bytes(image)
        do {
            let (disk, _) = try DiskImage.openForUpdate(image)
            try disk.close()
            Issue.record("\(image) was opened for update; expected a refusal naming \"\(phrase)\"", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(phrase), "\(error)", sourceLocation: sourceLocation)
        }
        #expect(try bytes(image) == before, "a refused image changed", sourceLocation: sourceLocation)
    }

    static func image(_ dir: TempDir, _ options: [String] = [], size: String = "4M") throws -> String {
        let path = dir.file("disk.qcow2")
        try? FileManager.default.removeItem(atPath: path)
        try Tool.run(Tool.qemuImg, ["create", "-q", "-f", "qcow2"] + options + [path, size])
        return path
    }

    static func setIncompatible(_ path: String, _ bits: UInt64) throws {
        var w = ByteWriter()
        w.writeBigEndian(bits)
        try RawFixture.poke(path, at: 72, w.bytes)
    }

    @Test func featuresTheUpdaterCannotKeepAreRefusedBeforeAnyWrite() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        var path = try Self.image(dir)
        try Self.setIncompatible(path, 1)
        try Self.expectRefused(path, "marked dirty")
        try Self.setIncompatible(path, 2)
        try Self.expectRefused(path, "marked corrupt")
        try Self.setIncompatible(path, 1 << 40)
        try Self.expectRefused(path, "unknown incompatible feature bits")
        path = try Self.image(dir)
        try RawFixture.poke(path, at: 32, [0, 0, 0, 1])
        try Self.expectRefused(path, "encrypted")
        path = try Self.image(dir, ["-o", "extended_l2=on"])
        try Self.expectRefused(path, "extended L2")
        path = try Self.image(dir, ["-o", "refcount_bits=8"])
        try Self.expectRefused(path, "8-bit refcounts")
        path = try Self.image(dir, ["-o", "data_file=" + dir.file("data.raw")])
        try Self.expectRefused(path, "external data file")
        path = try Self.image(dir)
        try Tool.qemu("bitmap", "--add", path, "b0")
        try Self.expectRefused(path, "autoclear features")
        let vmdk = dir.file("disk.vmdk")
        try Tool.qemu("create", "-q", "-f", "vmdk", vmdk, "4M")
        try Self.expectRefused(vmdk, "ferry writes in place to raw disks, block devices and qcow2 images only")
    }

    /// An L2 entry that points at the L1 table (which has refcount 1, so a naive updater
    /// would write there in place) is refused, and the image is not changed.
    @Test func aDataClusterOverlappingMetadataIsRefused() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 4 << 20, seed: 5, density: 1)
        let path = dir.file("disk.qcow2")
        try Tool.qemu("convert", "-f", "raw", "-O", "qcow2", raw, path)
        let head = try FileDevice.openForReading(path).readBytes(at: 0, count: 112)
        let l1Offset = try #require(head.bigEndian(UInt64.self, at: 40))
        let l1 = try FileDevice.openForReading(path).readBytes(at: l1Offset, count: 8)
        let l2Offset = try #require(l1.bigEndian(UInt64.self, at: 0)) & QCOW2.offsetMask
        var w = ByteWriter()
        w.writeBigEndian(l1Offset | QCOW2.copiedFlag)
        try RawFixture.poke(path, at: l2Offset, w.bytes)
        let before = try Self.bytes(path)
        let (disk, _) = try DiskImage.openForUpdate(path)
        let data = [UInt8](repeating: 0xAB, count: 512)
        #expect(throws: FormatError.self) { try data.withUnsafeBytes { try disk.write($0, at: 0) } }
        try disk.close()
        #expect(try Self.bytes(path) == before)
    }

    /// Seeded mutation of the metadata (header, L1, refcount table and blocks, L2 tables):
    /// every mutant is refused, or updated and flushed without a crash; a mutant that
    /// `qemu-img check` called clean before must still be clean after the update.
    @Test func mutatedMetadataIsRefusedOrUpdatedIntoACleanImage() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 3 << 20, seed: 77)
        let seedImage = dir.file("seed.qcow2")
        try Tool.qemu("convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw, seedImage)
        let pristine = try Self.bytes(seedImage)
        // Metadata lives in the clusters qemu-img convert writes before the data it maps,
        // and in the header; mutate those bytes (the first 64 KiB hold header, tables, L2s).
        let metadataEnd = min(pristine.count, 64 << 10)
        var rng = SeededRandom(seed: 2026)
        var outcomes = (refused: 0, updated: 0, cleanBeforeAndAfter: 0)
        for round in 0..<60 {
            var mutant = [UInt8](pristine)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<metadataEnd, using: &rng)
                mutant[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            }
            let path = dir.file("mutant.qcow2")
            try Data(mutant).write(to: URL(fileURLWithPath: path))
            let cleanBefore = try Tool.run(Tool.qemuImg, ["check", "-q", "-f", "qcow2", path], expectSuccess: false).status == 0
            do {
                let (disk, _) = try DiskImage.openForUpdate(path)
                defer { try? disk.close() }
                var writes = SeededRandom(seed: UInt64(round))
                for _ in 0..<20 {
                    let length = Int.random(in: 1...20_000, using: &writes)
                    let offset = UInt64.random(in: 0...(disk.size - UInt64(length)), using: &writes)
                    let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: round), count: length)
                    try bytes.withUnsafeBytes { try disk.write($0, at: offset) }
                }
                try disk.flush()
                outcomes.updated += 1
            } catch is FormatError {
                outcomes.refused += 1
            } catch let error as DiskError {
                outcomes.refused += 1
                #expect(error.code != .io, "round \(round): \(error)")
            }
            if cleanBefore {
                let after = try Tool.run(Tool.qemuImg, ["check", "-f", "qcow2", path], expectSuccess: false)
                #expect(after.status == 0, "round \(round): clean before, after the update: \(after.output)")
                if after.status == 0 { outcomes.cleanBeforeAndAfter += 1 }
            }
        }
        print("qcow2 update mutants: \(outcomes.refused) refused, \(outcomes.updated) updated, \(outcomes.cleanBeforeAndAfter) clean before and after")
        #expect(outcomes.refused + outcomes.updated == 60)
    }
}
