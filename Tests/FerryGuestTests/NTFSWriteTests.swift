import FerryBinary
import FerryDisk
import FerryNTFS
import FerryTestSupport
import Foundation
import Testing

/// In-place writes (issue 11, item 2), each checked by ntfs-3g's tools: `ntfsfix -n`,
/// `ntfscat`, `ntfsinfo` and a FUSE mount.
@Suite struct NTFSWriteTests {
    static let systemPath = ["WINDOWS", "system32", "config", "SYSTEM"]

    /// A bare 32 MiB volume (4 KiB clusters) built by mkntfs + ntfs-3g from `files`.
    static func volume(_ dir: URL, _ files: [String: [UInt8]]) throws -> String? {
        try GuestTools.writeTree(dir.appendingPathComponent("tree"), files)
        let image = dir.appendingPathComponent("vol.img").path
        guard try GuestTools.makeFixture(["ntfs", image, "volume", dir.appendingPathComponent("tree").path, "32"]) else { return nil }
        return image
    }

    @Test func sameSizeOverwriteTouchesOnlyTheData() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfscat", "ntfsinfo", "ntfsfix") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let old = NTFSTests.noise(1 << 20, seed: 71)
        guard let image = try Self.volume(dir, ["WINDOWS/system32/config/SYSTEM": old, "tiny.txt": Array("resident\n".utf8)]) else { return }
        let new = NTFSTests.noise(1 << 20, seed: 73)
        let (report, read, written) = try NTFSVolume.rewrite(image, Self.systemPath, with: new)
        print("same-size 1 MiB overwrite: \(read) bytes read, \(written) bytes written in \(report.writes) writes")
        #expect(report.recordsUpdated.isEmpty && report.clustersAllocated == 0 && !report.mirrorUpdated)
        #expect(report.dataBytesWritten == UInt64(new.count) && report.metadataBytesWritten == 0)
        #expect(written == UInt64(new.count))
        #expect(read < 256 << 10, "metadata only: boot sector, a few records, index blocks, the 128 KiB $UpCase table")
        try NTFSOracle.expectFile(image, "/WINDOWS/system32/config/SYSTEM", new)
        #expect(try NTFSOracle.dataInfo(image, "/WINDOWS/system32/config/SYSTEM")?.dataSize == UInt64(new.count))
        try NTFSOracle.expectContents(image, "/tiny.txt", Array("resident\n".utf8))
    }

    @Test func growsAcrossAClusterBoundaryThenShrinks() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfscat", "ntfsinfo", "ntfsfix") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let old = NTFSTests.noise(10_000, seed: 11)  // 3 clusters of 4 KiB
        let others = (0..<20).reduce(into: [String: [UInt8]]()) { $0["WINDOWS/system32/drivers/d\($1).sys"] = NTFSTests.noise(9000, seed: UInt64(101 + 2 * $1)) }
        guard let image = try Self.volume(dir, others.merging(["WINDOWS/system32/config/SYSTEM": old]) { a, _ in a }) else { return }
        let path = "/WINDOWS/system32/config/SYSTEM"
        #expect(try NTFSOracle.dataInfo(image, path) == .init(dataSize: 10_000, allocatedSize: 12_288, initializedSize: 10_000, runs: 1))

        let grown = NTFSTests.noise(20_000, seed: 13)  // 5 clusters
        let (report, read, written) = try NTFSVolume.rewrite(image, Self.systemPath, with: grown)
        print("growth 10,000 -> 20,000 bytes: \(read) bytes read, \(written) bytes written in \(report.writes) writes: \(report)")
        #expect(report.clustersAllocated == 2 && report.recordsUpdated.count == 1 && !report.mirrorUpdated)
        #expect(report.dataBytesWritten == 20_480, "the contents and zeros to the end of the new cluster")
        #expect(written == report.bytesWritten)
        try NTFSOracle.expectFile(image, path, grown)
        let info = try #require(try NTFSOracle.dataInfo(image, path))
        #expect(info.dataSize == 20_000 && info.allocatedSize == 20_480 && info.initializedSize == 20_000 && info.runs == report.runs)
        // The drivers around it are untouched.
        try NTFSOracle.expectContents(image, "/WINDOWS/system32/drivers/d7.sys", NTFSTests.noise(9000, seed: 115))

        let shrunk = NTFSTests.noise(5000, seed: 15)
        let (small, _, _) = try NTFSVolume.rewrite(image, Self.systemPath, with: shrunk)
        #expect(small.clustersAllocated == 0 && small.clustersKeptPastEnd == 3)
        try NTFSOracle.expectFile(image, path, shrunk)
        #expect(try NTFSOracle.dataInfo(image, path) == .init(dataSize: 5000, allocatedSize: 20_480, initializedSize: 5000, runs: info.runs))
    }

    /// Free space as a comb of one-cluster holes (files written by ntfs-3g, every other deleted):
    /// the file grows into the holes, one run each.
    @Test func growsIntoFragmentedFreeSpace() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfscat", "ntfsinfo", "ntfsfix", "python3") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("frag.img").path
        guard try GuestTools.makeFixture(["ntfs-fragmented", image, "40"]) else { return }
        #expect(try NTFSOracle.dataInfo(image, "/SYSTEM")?.runs == 1)
        let grown = [UInt8](repeating: 0x5A, count: 40_000) + NTFSTests.noise(30 * 4096, seed: 5)
        let (report, read, written) = try NTFSVolume.rewrite(image, ["system"], with: grown)
        print("fragmented growth by 30 clusters: \(read) bytes read, \(written) bytes written: \(report)")
        #expect(report.clustersAllocated == 30)
        #expect(report.runs >= 20, "the holes are one cluster each")
        try NTFSOracle.expectFile(image, "/SYSTEM", grown)
        let info = try #require(try NTFSOracle.dataInfo(image, "/SYSTEM"))
        #expect(info == .init(dataSize: UInt64(grown.count), allocatedSize: 40 * 4096, initializedSize: UInt64(grown.count), runs: report.runs))
        // The files beside the holes keep their bytes.
        try NTFSOracle.expectContents(image, "/f/00000.bin", [UInt8](repeating: 0x66, count: 4096))
        try NTFSOracle.expectContents(image, "/f/00078.bin", [UInt8](repeating: 0x66, count: 4096))
    }

    /// 300 one-cluster holes: 300 more runs cannot fit in a 1 KiB record. Refused, and not one
    /// byte of the image changes.
    @Test func refusesARunListThatDoesNotFitTheRecord() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfscat", "ntfsfix", "python3") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("frag.img").path
        guard try GuestTools.makeFixture(["ntfs-fragmented", image, "300"]) else { return }
        let before = try Data(contentsOf: URL(fileURLWithPath: image))
        let grown = [UInt8](repeating: 0x5A, count: 40_000 + 300 * 4096)
        #expect {
            _ = try NTFSVolume.rewrite(image, ["SYSTEM"], with: grown)
        } throws: { error in
            (error as? FormatError)?.code == .limitExceeded && "\(error)".contains("run list")
        }
        let unchanged = try Data(contentsOf: URL(fileURLWithPath: image)) == before
        #expect(unchanged, "the refused write changed the image")
        try NTFSOracle.expectConsistent(image)
        try NTFSOracle.expectContents(image, "/SYSTEM", [UInt8](repeating: 0x5A, count: 40_000))
    }

    @Test func refusesWhatItCannotWriteBeforeWriting() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let image = try Self.volume(dir, ["tiny.txt": Array("resident\n".utf8), "WINDOWS/big.bin": NTFSTests.noise(9000, seed: 4)]) else { return }
        let before = try Data(contentsOf: URL(fileURLWithPath: image))
        let device = try FileDevice.openForWriting(image)
        defer { try? device.close() }
        let volume = try NTFSVolume(device: device)
        let tiny = try #require(try volume.lookup(["TINY.TXT"]))
        #expect(throws: FormatError.self) { try volume.replaceContents(ofRecord: tiny, with: [1, 2, 3], on: device) }
        #expect(throws: FormatError.self) { try volume.replaceContents(ofRecord: 5, with: [1], on: device) }  // the root directory
        #expect(throws: FormatError.self) { try volume.replaceContents(ofRecord: 40_000, with: [1], on: device) }  // past $MFT
        let big = try #require(try volume.lookup(["windows", "BIG.BIN"]))
        let readOnly = try FileDevice.openForReading(image)
        defer { try? readOnly.close() }
        #expect(throws: DiskError.self) { try volume.replaceContents(ofRecord: big, with: [1], on: readOnly) }
        #expect(try volume.lookup(["WINDOWS", "nope.bin"]) == nil)
        #expect(try volume.lookup(["WINDOWS/big.bin"]) == nil)
        let unchanged = try Data(contentsOf: URL(fileURLWithPath: image)) == before
        #expect(unchanged, "a refused write changed the image")
    }
}
