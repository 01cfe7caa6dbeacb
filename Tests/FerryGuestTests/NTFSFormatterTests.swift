import FerryBinary
import FerryDisk
import FerryNTFS
import FerryTestSupport
import Foundation
import Testing

/// ferry's own NTFS formatter, read back by ntfs-3g's tools and by ferry's reader.
@Suite struct NTFSFormatterTests {
    /// A tree with a directory too large for its record (INDX blocks), a nested path, a file
    /// spanning several clusters, an empty file and a non-8.3 name.
    static func tree() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [
            "boot.ini": Array("[boot loader]\r\n".utf8),
            "WINDOWS/system32/config/SYSTEM": (0..<40_000).map { UInt8(truncatingIfNeeded: $0 * 7) },
            "WINDOWS/system32/config/SOFTWARE": [UInt8](repeating: 0x5A, count: 9000),
            "WINDOWS/system32/drivers/atapi.sys": Array("MZ atapi".utf8),
            "Documents and Settings/empty.txt": [],
        ]
        for i in 0..<120 { files["WINDOWS/Many/file-with-a-long-name-\(i).dat"] = Array("file \(i)".utf8) }
        return files
    }

    static func format(_ path: String, files: [String: [UInt8]], sectors: UInt64 = 64 << 11) throws {
        let device = try FileDevice.create(path, size: sectors * 512)
        defer { try? device.close() }
        try NTFSFormatter(label: "FERRYDEMO", hiddenSectors: 63).format(device, at: 0, sectors: sectors, files: files)
    }

    @Test func ntfs3gReadsEveryFileAndFindsTheVolumeConsistent() throws {
        guard GuestTools.require("ntfsfix", "ntfscat", "ntfsinfo", "ntfsls") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("vol.img").path
        let files = Self.tree()
        try Self.format(image, files: files)
        try NTFSOracle.expectConsistent(image)
        for (path, contents) in files { try NTFSOracle.expectContents(image, "/" + path, contents) }
        let listing = try GuestTools.run("ntfsls", ["-a", image, "-p", "/WINDOWS/Many"])
        #expect(listing.status == 0, "ntfsls: \(listing.stderr)")
        let names = listing.text.split(separator: "\n").filter { $0 != "." && $0 != ".." }
        #expect(names.count == 120 && names.allSatisfy { $0.hasPrefix("file-with-a-long-name-") }, "ntfsls: \(listing.text.prefix(300))")
        let info = try GuestTools.run("ntfsinfo", ["-m", image])
        #expect(info.status == 0 && info.text.contains("FERRYDEMO"), "ntfsinfo -m: \(info.text) \(info.stderr)")
    }

    @Test func ntfs3gMountsTheVolumeAndReadsTheHive() throws {
        guard GuestTools.require("ntfs-3g", "fusermount") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("vol.img").path
        let files = Self.tree()
        try Self.format(image, files: files)
        try NTFSOracle.expectFile(image, "WINDOWS/system32/config/SYSTEM", files["WINDOWS/system32/config/SYSTEM"] ?? [])
    }

    @Test func ferryReadsWhatItFormatted() throws {
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("vol.img").path
        let files = Self.tree()
        try Self.format(image, files: files)
        let volume = try NTFSVolume(device: try FileDevice.openForReading(image))
        #expect(try volume.label() == "FERRYDEMO")
        #expect(try volume.volumeInformation().isDirty == false)
        #expect(volume.journalState() == .empty)
        #expect(volume.bootSector.hiddenSectors == 63 && volume.bootSector.heads == 255)
        for (path, contents) in files {
            let stream = try #require(try volume.open(path), "\(path) not found")
            let same = try stream.read(at: 0, count: contents.count) == contents
            #expect(same, "\(path)")
        }
        #expect(try volume.open("windows/SYSTEM32/Config/system") != nil, "lookups fold case through $UpCase")
        #expect(try volume.open("WINDOWS/missing.sys") == nil)
    }

    @Test func theSameTreeGivesTheSameBytes() throws {
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.img").path, b = dir.appendingPathComponent("b.img").path
        try Self.format(a, files: Self.tree())
        try Self.format(b, files: Self.tree())
        let same = try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b))
        #expect(same)
    }

    @Test func aTreeThatDoesNotFitIsRefused() throws {
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("small.img").path
        #expect(throws: FormatError.self) {
            try Self.format(image, files: ["big.bin": [UInt8](repeating: 1, count: 8 << 20)], sectors: 8192)
        }
        #expect(throws: FormatError.self) { try Self.format(image + "2", files: ["a/../b": [1]]) }
    }
}

/// Copy-on-write rewrites (what `ferry fix` uses for hives): new clusters, the record switched,
/// the old clusters freed; checked by ntfs-3g's tools on volumes of ferry's own formatter.
@Suite struct NTFSCopyOnWriteTests {
    @Test func aCopyOnWriteRewriteMovesTheFileAndFreesItsOldClusters() throws {
        guard GuestTools.require("ntfsfix", "ntfscat", "ntfsinfo") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("vol.img").path
        let path = ["WINDOWS", "system32", "config", "SYSTEM"]
        try NTFSFormatterTests.format(image, files: NTFSFormatterTests.tree())
        func clustersInUse() throws -> Int {
            let map = try GuestTools.run("ntfscat", [image, "$Bitmap"])
            return map.stdout.reduce(0) { $0 + $1.nonzeroBitCount }
        }
        let inUse = try clustersInUse()
        for (round, size) in [40_000, 40_000, 90_000, 12_000].enumerated() {
            let contents = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) }
            let clusters = UInt64((size + 4095) / 4096)
            let (report, _, _) = try NTFSVolume.rewrite(image, path, with: contents, placement: .copyOnWrite)
            #expect(report.clustersAllocated == clusters && report.runs >= 1)
            #expect(report.clustersFreed > 0 && report.recordsUpdated.count == 1)
            try NTFSOracle.expectConsistent(image)
            try NTFSOracle.expectContents(image, "/" + path.joined(separator: "/"), contents)
            let info = try #require(try NTFSOracle.dataInfo(image, "/" + path.joined(separator: "/")))
            #expect(info.dataSize == UInt64(size) && info.allocatedSize == clusters * 4096, "\(info)")
            // $Bitmap, read by ntfscat: the old clusters were given back (40,000 bytes took 10).
            #expect(try clustersInUse() == inUse - 10 + Int(clusters), "round \(round)")
        }
    }
}
