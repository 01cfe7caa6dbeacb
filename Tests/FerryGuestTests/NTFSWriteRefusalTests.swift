import FerryBinary
import FerryDisk
import FerryNTFS
import FerryTestSupport
import Foundation
import Testing

/// The volume states that forbid a write, and the $MFTMirr copy of a mirrored record.
@Suite struct NTFSWriteStateTests {
    /// Sets the dirty bit of $VOLUME_INFORMATION (record 3) in the image, byte by byte.
    static func markDirty(_ image: String) throws {
        let device = try FileDevice.openForWriting(image)
        defer { try? device.close() }
        let volume = try NTFSVolume(device: device)
        let start = volume.bootSector.mftCluster * UInt64(volume.clusterSize) + 3 * UInt64(volume.recordSize)
        let record = try device.readBytes(at: start, count: volume.recordSize)
        var position = Int(record[20]) | Int(record[21]) << 8
        while record[position] != 0xFF {
            let length = Int(record[position + 4]) | Int(record[position + 5]) << 8
            if record[position] == 0x70 {
                let value = position + (Int(record[position + 20]) | Int(record[position + 21]) << 8)
                // $MFTMirr keeps a copy of record 3; ntfs-3g refuses a volume whose copies differ.
                let mirror = volume.bootSector.mftMirrorCluster * UInt64(volume.clusterSize) + 3 * UInt64(volume.recordSize)
                for at in [start, mirror] {
                    try [record[value + 10] | 1].withUnsafeBytes { try device.write($0, at: at + UInt64(value + 10)) }
                }
                return
            }
            position += length
        }
        throw FixtureError(message: "no $VOLUME_INFORMATION in record 3")
    }

    @Test func dirtyAndHibernatedVolumesAreRefused() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfsinfo") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let clean = try NTFSWriteTests.volume(dir.appendingPathComponent("clean"), ["a.bin": NTFSTests.noise(9000, seed: 1)]),
            let hibernated = try NTFSWriteTests.volume(
                dir.appendingPathComponent("hibr"), ["hiberfil.sys": Array("hibr".utf8) + [UInt8](repeating: 0, count: 8188)])
        else { return }
        #expect(try NTFSVolume(device: try FileDevice.openForReading(clean)).writeRefusals() == [])

        let asleep = try NTFSVolume(device: try FileDevice.openForReading(hibernated)).writeRefusals()
        #expect(asleep.count == 1 && asleep[0].contains("hibernated"), "\(asleep)")

        try Self.markDirty(clean)
        // libntfs refuses it too: "Volume is scheduled for check."
        let info = try GuestTools.run("ntfsinfo", ["-m", clean])
        #expect(info.status != 0 && (info.text + info.stderr).contains("scheduled for check"), "ntfsinfo sees the dirty flag")
        let dirty = try NTFSVolume(device: try FileDevice.openForReading(clean)).writeRefusals()
        #expect(dirty.count == 1 && dirty[0].contains("dirty"), "\(dirty)")
    }

    /// $LogFile is record 2, one of the four $MFTMirr keeps: growing it rewrites both copies,
    /// and ntfsfix (which compares them) still accepts the volume.
    @Test func aMirroredRecordIsWrittenToMFTMirrToo() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "ntfsinfo", "ntfsfix") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let image = try NTFSWriteTests.volume(dir, ["a.bin": NTFSTests.noise(9000, seed: 1)]) else { return }
        let before = try #require(try NTFSOracle.dataInfo(image, inode: 2))
        let report: NTFSWriteReport
        do {
            let device = try FileDevice.openForWriting(image)
            defer { try? device.close() }
            let volume = try NTFSVolume(device: device)
            let log = try volume.stream(of: try volume.record(2), type: .data).readAll(limit: 64 << 20)
            report = try volume.replaceContents(ofRecord: 2, with: log + [UInt8](repeating: 0xFF, count: 4096), on: device)
        }
        #expect(report.mirrorUpdated && report.recordsUpdated == [2] && report.clustersAllocated == 1)
        try NTFSOracle.expectConsistent(image)
        #expect(try NTFSOracle.dataInfo(image, inode: 2)?.dataSize == before.dataSize + 4096)
        let device = try FileDevice.openForReading(image)
        defer { try? device.close() }
        let volume = try NTFSVolume(device: device)
        let cs = UInt64(volume.clusterSize), size = volume.recordSize
        let main = try device.readBytes(at: volume.bootSector.mftCluster * cs + 2 * UInt64(size), count: size)
        let mirror = try device.readBytes(at: volume.bootSector.mftMirrorCluster * cs + 2 * UInt64(size), count: size)
        let same = main == mirror
        #expect(same, "$MFT and $MFTMirr copies of record 2 differ")
    }
}

@Suite struct DataRunEncodeTests {
    @Test func encodesTheFewestSignedBytes() throws {
        // formats §6.4's example, and a length of 0x80 that needs a second byte to stay positive.
        #expect(try DataRun.encode([DataRun(vcn: 0, length: 74, lcn: 0x2200)]) == [0x21, 0x4A, 0x00, 0x22, 0x00])
        #expect(try DataRun.encode([DataRun(vcn: 0, length: 0x80, lcn: 0x10)]) == [0x12, 0x80, 0x00, 0x10, 0x00])
        // A backwards jump of 9272 clusters is a negative delta (0xDBC8), a sparse run has none.
        let runs = [DataRun(vcn: 0, length: 16, lcn: 0x3000), DataRun(vcn: 16, length: 5, lcn: nil), DataRun(vcn: 21, length: 8, lcn: LCN(0x3000 - 9272))]
        #expect(try DataRun.encode(runs) == [0x21, 0x10, 0x00, 0x30, 0x01, 0x05, 0x21, 0x08, 0xC8, 0xDB, 0x00])
        #expect(throws: FormatError.self) { try DataRun.encode([DataRun(vcn: 0, length: 1, lcn: 1), DataRun(vcn: 5, length: 1, lcn: 9)]) }
    }

    @Test func roundTripsThroughTheDecoder() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("DataRunEncodeTests seed \(seed)")
        var random = SeededRandom(seed: seed)
        let total: UInt64 = 1 << 40
        for _ in 0..<200 {
            var runs: [DataRun] = []
            var vcn: UInt64 = 0
            for _ in 0..<Int.random(in: 1...40, using: &random) {
                let length = UInt64.random(in: 1...(UInt64(1) << UInt64.random(in: 0...30, using: &random)), using: &random)
                let lcn: LCN? = Int.random(in: 0..<8, using: &random) == 0 ? nil : LCN(UInt64.random(in: 0..<(total - length), using: &random))
                runs.append(DataRun(vcn: VCN(vcn), length: length, lcn: lcn))
                vcn += length
            }
            #expect(try DataRun.decode(try DataRun.encode(runs), startVCN: 0, totalClusters: total) == runs, "seed \(seed)")
        }
    }
}
