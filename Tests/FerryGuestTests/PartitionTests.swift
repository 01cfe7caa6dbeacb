import FerryBinary
import FerryDisk
import FerryPartitions
import Foundation
import Testing

@Suite struct PartitionTests {
    static func entry(_ type: UInt8, start: UInt32, count: UInt32, active: Bool = false) -> MBREntry {
        var w = ByteWriter()
        w.write(active ? 0x80 : 0)
        w.write(bytes: [0xFE, 0xFF, 0xFF, type, 0xFE, 0xFF, 0xFF])
        w.writeLittleEndian(start)
        w.writeLittleEndian(count)
        var r = ByteReader(w.bytes, structure: "test")
        return try! MBREntry(parsing: &r)
    }

    static func sector(_ entries: [MBREntry], signature: UInt32 = 0x1234_5678, bootCode: [UInt8] = [0xFA, 0x33, 0xC0]) -> [UInt8] {
        var padded = entries
        while padded.count < 4 { padded.append(entry(0, start: 0, count: 0)) }
        var mbrBytes = [UInt8](repeating: 0, count: 510) + [0x55, 0xAA]
        mbrBytes.replaceSubrange(0..<bootCode.count, with: bootCode)
        var mbr = try! MasterBootRecord(parsing: mbrBytes)
        mbr.entries = padded
        mbr.diskSignature = signature
        var w = ByteWriter()
        mbr.write(to: &w)
        return w.bytes
    }

    @Test func mbrWithLogicalPartitions() throws {
        let disk = MemoryDevice(size: 64 << 20)
        try disk.write(bytes: Self.sector([Self.entry(0x07, start: 63, count: 1000, active: true), Self.entry(0x0F, start: 2048, count: 100_000)]), at: 0)
        // EBR 1 at 2048: logical at +63, link to the next EBR at extended+20000.
        try disk.write(bytes: Self.sector([Self.entry(0x83, start: 63, count: 5000), Self.entry(0x05, start: 20000, count: 10000)], signature: 0, bootCode: []), at: 2048 * 512)
        try disk.write(bytes: Self.sector([Self.entry(0x82, start: 2048, count: 4000)], signature: 0, bootCode: []), at: 22048 * 512)
        let table = try PartitionReader.read(disk)
        #expect(table.scheme == .mbr)
        #expect(table.diskSignature == 0x1234_5678)
        #expect(table.hasBootCode)
        #expect(table.partitions.map(\.index) == [1, 2, 5, 6])
        #expect(table.partitions[0].alignment == .track && table.partitions[0].bootable)
        #expect(table.partitions[2].startLBA == 2111 && table.partitions[2].isLogical && table.partitions[2].mbrType == 0x83)
        #expect(table.partitions[3].startLBA == 24096 && table.partitions[3].alignment == .fourKiB)
        #expect(table.warnings.isEmpty)
    }

    @Test func ebrLoopStopsWithAWarning() throws {
        let disk = MemoryDevice(size: 16 << 20)
        try disk.write(bytes: Self.sector([Self.entry(0x05, start: 2048, count: 20000)]), at: 0)
        // The EBR links to itself (relative start 0).
        try disk.write(bytes: Self.sector([Self.entry(0x83, start: 63, count: 100), Self.entry(0x05, start: 0, count: 100)], bootCode: []), at: 2048 * 512)
        let table = try PartitionReader.read(disk)
        #expect(table.partitions.filter(\.isLogical).count == 1)
        #expect(table.warnings.contains { $0.contains("loops") })
    }

    @Test func volumeBootSectorIsNotAnMBR() throws {
        var vbr = [UInt8](repeating: 0, count: 512)
        vbr.replaceSubrange(0..<11, with: [0xEB, 0x52, 0x90] + Array("NTFS    ".utf8))
        vbr[510] = 0x55; vbr[511] = 0xAA
        let table = try PartitionReader.read(MemoryDevice(bytes: vbr + [UInt8](repeating: 0, count: 1 << 20)))
        #expect(table.scheme == .none)
        #expect(BootSectorProbe.volumeKind(vbr) == .ntfs)
    }

    /// sfdisk and sgdisk are the oracles: what they wrote, ferry reads.
    @Test func gptFromSgdiskWithBackupChecks() throws {
        guard GuestTools.require("sgdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("gpt.img").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)?.truncate(atOffset: 64 << 20)
        let made = try GuestTools.run("sgdisk", ["-n", "1:2048:+10M", "-t", "1:ef00", "-n", "2:0:+20M", "-t", "2:0700", "-c", "2:Basic", "-n", "3:0:0", "-t", "3:8300", path])
        #expect(made.status == 0)
        let table = try PartitionReader.read(try FileDevice.openForReading(path))
        #expect(table.scheme == .gpt)
        #expect(table.warnings.isEmpty, "\(table.warnings)")
        #expect(table.partitions.map(\.typeName) == ["EFI system", "Microsoft basic data", "Linux data"])
        #expect(table.partitions[1].name == "Basic")
        let printed = try GuestTools.run("sgdisk", ["-i", "2", path]).text
        #expect(printed.contains("First sector: \(table.partitions[1].startLBA) "))
        #expect(printed.contains("Last sector: \(table.partitions[1].startLBA + table.partitions[1].sectorCount - 1) "))
        let disk = try GuestTools.run("sgdisk", ["-p", path]).text
        #expect(disk.contains("Disk identifier (GUID): \(try #require(table.diskGUID).description)"))

        // Corrupt the primary header: the backup is used, with a warning.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 512 + 24)
        handle.write(Data([0xFF]))
        try handle.close()
        let fallback = try PartitionReader.read(try FileDevice.openForReading(path))
        #expect(fallback.partitions.count == 3)
        #expect(fallback.warnings.contains { $0.contains("using the backup") })

        // Grow the disk: the backup header is no longer at the last LBA.
        let grown = dir.appendingPathComponent("grown.img").path
        try GuestTools.run("sgdisk", ["-n", "1:2048:+10M", path])
        try FileManager.default.copyItem(atPath: path, toPath: grown)
        try FileHandle(forWritingAtPath: grown)?.truncate(atOffset: 80 << 20)
        let moved = try PartitionReader.read(try FileDevice.openForReading(grown))
        #expect(moved.warnings.contains { $0.contains("not the last LBA") || $0.contains("backup GPT header") })
    }

    /// Found by FuzzPartitions (FailCases/FuzzPartitions/gpt-entry-spans-every-lba): an entry from
    /// LBA 0 to 2^64-1 is 2^64 sectors, one more than a UInt64 holds; the size overflowed and trapped.
    @Test func gptEntrySpanningEveryLBAIsIgnoredWithAWarning() throws {
        let table = try PartitionReader.read(FuzzTests.gptDisk(partitions: [(2048, 20479), (0, .max), (1, .max)]))
        #expect(table.partitions.map(\.index) == [1, 3])
        #expect(table.partitions.last?.sectorCount == .max)
        #expect(table.warnings.contains { $0.contains("GPT entry 2 spans every 64-bit LBA") })
        #expect(table.warnings.contains { $0.contains("partition 3 ends past the end of the disk") })
    }

    @Test func mbrFromSfdisk() throws {
        guard GuestTools.require("sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("mbr.img").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)?.truncate(atOffset: 32 << 20)
        let script = dir.appendingPathComponent("layout").path
        try "label-id: 0xcafef00d\nstart=63, size=20000, type=7, bootable\nstart=20480, size=20480, type=f\nstart=22528, size=8192, type=83\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        let made = try GuestTools.run("sh", ["-c", "sfdisk -q '\(path)' < '\(script)'"])
        #expect(made.status == 0, "\(made.stderr)")
        let table = try PartitionReader.read(try FileDevice.openForReading(path))
        #expect(table.diskSignature == 0xCAFE_F00D)
        let dump = try GuestTools.run("sfdisk", ["-d", path]).text
        for p in table.partitions {
            #expect(dump.contains("start=\(String(repeating: " ", count: max(0, 12 - String(p.startLBA).count)))\(p.startLBA), size=\(String(repeating: " ", count: max(0, 12 - String(p.sectorCount).count)))\(p.sectorCount)"), "partition \(p.index)")
        }
        #expect(table.partitions.map(\.index) == [1, 2, 5])
    }
}

extension MemoryDevice {
    func write(bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }
}
