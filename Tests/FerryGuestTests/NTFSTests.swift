import FerryDisk
import FerryNTFS
import FerryPartitions
import Foundation
import Testing

@Suite struct NTFSTests {
    /// Deterministic pseudo-random bytes (xorshift), so file contents are not trivially zero.
    static func noise(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed | 1
        return (0..<count).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    /// A volume with nested directories, a big directory (B-tree with INDX blocks), a small
    /// resident file and a large non-resident one, built by mkntfs + ntfs-3g FUSE.
    @Test func readsFilesLikeNtfscat() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfscat", "ntfsinfo") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var files: [String: [UInt8]] = [
            "WINDOWS/system32/config/SYSTEM": Self.noise(3 << 20 + 123, seed: 1),
            "WINDOWS/system32/drivers/atapi.sys": Self.noise(95_360, seed: 2),
            "tiny.txt": Array("hello from a resident file\n".utf8),
        ]
        for i in 0..<300 { files["WINDOWS/system32/drivers/file\(i).sys"] = Self.noise(100 + i, seed: UInt64(i + 10)) }
        try GuestTools.writeTree(dir.appendingPathComponent("tree"), files)
        let image = dir.appendingPathComponent("vol.img").path
        guard try GuestTools.makeFixture(["ntfs", image, "volume", dir.appendingPathComponent("tree").path, "32"]) else { return }

        let device = try FileDevice.openForReading(image)
        let volume = try NTFSVolume(device: device)
        #expect(volume.bootSector.hiddenSectors == 63)
        #expect(volume.bootSector.heads == 255)
        #expect(try volume.label() == "FERRYTEST")
        #expect(try volume.volumeInformation().isDirty == false)
        #expect(try volume.hibernationState() == .noHiberfile)
        for path in ["WINDOWS/system32/config/SYSTEM", "WINDOWS/system32/drivers/atapi.sys", "tiny.txt", "WINDOWS/system32/drivers/file277.sys"] {
            let stream = try #require(try volume.open("/" + path))
            let mine = try stream.read(at: 0, count: Int(stream.size))
            let oracle = try GuestTools.run("ntfscat", [image, "/" + path])
            #expect(oracle.status == 0)
            #expect(mine == Array(oracle.stdout), "\(path)")
            #expect(mine == files[path], "\(path)")
        }
        // Case-insensitive through $UpCase, as Windows resolves \Windows\System32\Config\system.
        let upper = try #require(try volume.open("\\windows\\SYSTEM32\\Config\\system"))
        #expect(upper.size == UInt64(3 << 20 + 123))
        #expect(try volume.open("/WINDOWS/system32/drivers/nope.sys") == nil)
        #expect(try volume.open("/WINDOWS/system32/config/SYSTEM/below") == nil)
        // ntfsinfo agrees on the MFT record size and cluster size.
        let info = try GuestTools.run("ntfsinfo", ["-m", image]).text
        #expect(info.contains("Cluster Size: \(volume.clusterSize)"))
        #expect(info.contains("MFT Record Size: \(volume.recordSize)"))
    }

    /// 4Kn: 4096-byte sectors and MFT records, fix-ups still in 512-byte strides (9 USA entries).
    @Test func reads4KnVolumes() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfscat") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tree = dir.appendingPathComponent("tree")
        let content = Self.noise(70_000, seed: 99)
        try GuestTools.writeTree(tree, ["WINDOWS/system32/config/SYSTEM": content, "a/b/c/d.txt": Array("deep\n".utf8)])
        let image = dir.appendingPathComponent("4k.img").path
        guard try GuestTools.makeFixture(["ntfs", image, "volume4k", tree.path]) else { return }
        let volume = try NTFSVolume(device: try FileDevice.openForReading(image))
        #expect(volume.bootSector.bytesPerSector == 4096 && volume.recordSize == 4096)
        #expect(try volume.open("/windows/system32/CONFIG/system")?.readAll(limit: 1 << 20) == content)
        #expect(try volume.open("/a/b/c/d.txt")?.readAll(limit: 64) == Array(try GuestTools.run("ntfscat", [image, "/a/b/c/d.txt"]).stdout))
    }

    @Test func hostileBootSectorsAreErrors() throws {
        var sector = [UInt8](repeating: 0, count: 512)
        sector.replaceSubrange(3..<11, with: Array("NTFS    ".utf8))
        sector[11] = 0; sector[12] = 2  // 512 bytes per sector
        sector[13] = 8
        sector[64] = 0xF6
        sector[68] = 1
        // 7 sectors per cluster? no: 0 sectors per cluster is rejected.
        var zeroCluster = sector
        zeroCluster[13] = 0
        #expect(throws: (any Error).self) { try NTFSBootSector(parsing: zeroCluster) }
        var hugeRecord = sector
        hugeRecord[64] = 0x80  // 2^128 bytes
        #expect(throws: (any Error).self) { try NTFSBootSector(parsing: hugeRecord) }
        // MFT past the end of the device.
        var farMFT = sector
        farMFT.replaceSubrange(40..<48, with: [0x00, 0x08, 0, 0, 0, 0, 0, 0])  // 2048 sectors
        farMFT.replaceSubrange(48..<56, with: [0xFF, 0xFF, 0, 0, 0, 0, 0, 0])
        let device = MemoryDevice(bytes: farMFT + [UInt8](repeating: 0, count: 2048 * 512 - 512))
        #expect(throws: (any Error).self) { try NTFSVolume(device: device) }
    }

    @Test func runlistDecoding() throws {
        // formats §6.4: 21 4A 00 22 00 = 74 clusters at LCN 0x2200.
        let runs = try DataRun.decode([0x21, 0x4A, 0x00, 0x22, 0x00], startVCN: 0, totalClusters: 100_000)
        #expect(runs == [DataRun(vcn: 0, length: 74, lcn: 0x2200)])
        // A negative delta (0xDBC8 = −9272) and a sparse run.
        let two = try DataRun.decode([0x21, 0x10, 0x00, 0x30, 0x01, 0x05, 0x21, 0x08, 0xC8, 0xDB, 0x00], startVCN: 0, totalClusters: 100_000)
        #expect(two == [DataRun(vcn: 0, length: 16, lcn: 0x3000), DataRun(vcn: 16, length: 5, lcn: nil), DataRun(vcn: 21, length: 8, lcn: LCN(0x3000 - 9272))])
        // Pointing past the volume.
        #expect(throws: (any Error).self) { try DataRun.decode([0x21, 0x4A, 0x00, 0x22, 0x00], startVCN: 0, totalClusters: 1000) }
        #expect(throws: (any Error).self) { try DataRun.decode([0x11, 0x04, 0x80, 0x00], startVCN: 0, totalClusters: 1000) }  // LCN < 0
    }
}

@Suite struct NTFSAttributeListTests {
    /// Attributes behind an $ATTRIBUTE_LIST: 60 named streams push most of /big.bin's
    /// attributes into extension records; both the unnamed and named $DATA must still read.
    @Test func followsAttributeLists() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfscat", "python3") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("attrlist.img").path
        guard try GuestTools.makeFixture(["ntfs-attrlist", image]) else { return }
        let volume = try NTFSVolume(device: try FileDevice.openForReading(image))
        let record = try #require(try volume.file(at: "/big.bin"))
        #expect(!record.attributes(.attributeList).isEmpty)
        let all = try volume.attributes(of: record)
        #expect(all.filter { $0.type == AttributeType.data.rawValue }.count == 61)
        let data = try #require(try volume.open("/big.bin")).readAll(limit: 1 << 20)
        #expect(data == Array(try GuestTools.run("ntfscat", [image, "/big.bin"]).stdout))
        #expect(data.count == 300_000)
        for i in [0, 37, 59] {
            let name = "stream" + (i < 10 ? "0" : "") + String(i)
            let stream = try volume.stream(of: record, type: .data, name: name)
            #expect(try stream.readAll(limit: 4096) == Array("value-of-stream-\(i < 10 ? "0" : "")\(i)".utf8))
        }
    }
}

@Suite struct NTFSJournalTests {
    /// A restart page as Windows leaves it: "RSTR", fix-ups over 512-byte strides, a restart
    /// area at 0x30 with the client in-use list and flags given.
    static func restartPage(inUse: UInt16, flags: UInt16) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 4096)
        func put16(_ v: UInt16, _ at: Int) { page[at] = UInt8(v & 0xFF); page[at + 1] = UInt8(v >> 8) }
        page.replaceSubrange(0..<4, with: Array("RSTR".utf8))
        put16(0x1E, 4)  // USA offset
        put16(9, 6)  // USN + 8 strides
        put16(0x1000, 16); put16(0x1000, 20)  // system and log page size (u32, high halves zero)
        put16(0x30, 24)  // restart area offset
        put16(1, 26); put16(1, 28)
        put16(inUse, 0x30 + 12)
        put16(flags, 0x30 + 14)
        put16(7, 0x1E)  // update sequence number; the saved stride ends stay 0
        for i in 1...8 { put16(7, i * 512 - 2) }
        return page
    }

    @Test func journalStates() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try GuestTools.writeTree(dir.appendingPathComponent("tree"), ["a.txt": Array("a".utf8)])
        let path = dir.appendingPathComponent("v.img").path
        guard try GuestTools.makeFixture(["ntfs", path, "volume", dir.appendingPathComponent("tree").path, "16"]) else { return }
        let image = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let clean = try NTFSVolume(device: MemoryDevice(bytes: image, writable: false))
        #expect([JournalState.empty, .clean].contains(clean.journalState()))
        let logFile = try clean.stream(of: clean.record(2), type: .data)
        let at = Int(try #require(logFile.runs.first?.lcn).value) * clean.clusterSize
        for (inUse, flags, expected) in [(UInt16(0), UInt16(0), JournalState.unclean), (0, 2, .clean), (0xFFFF, 0, .clean)] {
            var copy = image
            copy.replaceSubrange(at..<at + 4096, with: Self.restartPage(inUse: inUse, flags: flags))
            let volume = try NTFSVolume(device: MemoryDevice(bytes: copy, writable: false))
            #expect(volume.journalState() == expected, "in use \(inUse), flags \(flags)")
        }
        var torn = image
        torn.replaceSubrange(at..<at + 4096, with: Self.restartPage(inUse: 0, flags: 0))
        torn[at + 1022] = 0x55  // a stride that does not end with the USN
        #expect(try NTFSVolume(device: MemoryDevice(bytes: torn, writable: false)).journalState() == .unknown)
    }
}
