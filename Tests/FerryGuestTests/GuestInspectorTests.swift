import FerryDisk
import FerryGuest
import Foundation
import Testing

@Suite(.serialized) struct GuestInspectorTests {
    static func inspect(_ path: String) throws -> (InspectionReport, ReadCountingDevice) {
        let device = ReadCountingDevice(try FileDevice.openForReading(path))
        let report = try GuestInspector.inspect(device)
        print("inspect \(URL(fileURLWithPath: path).lastPathComponent): read \(device.bytesRead) bytes in \(device.reads) reads")
        return (report, device)
    }

    @Test func vmwareSCSIGuestWillNotBootOnIDE() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk", "sgdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try WindowsProfile.vmwareSCSI2003.image(in: dir, layout: "mbr63") else { return }
        let (report, device) = try Self.inspect(path)
        print(report.summary)
        #expect(report.partitionTable == "mbr")
        #expect(report.wholeDisk)
        #expect(report.partitions.count == 1)
        let p = try #require(report.partitions.first)
        #expect(p.startLBA == 63 && p.alignment == "LBA63" && !p.aligned && p.bootable && p.filesystem == "ntfs")
        #expect(p.label == "FERRYTEST")
        let w = try #require(report.windows)
        #expect(w.productName == "Microsoft Windows Server 2003")
        #expect(w.version == "5.2" && w.build == "3790" && w.servicePack == "Service Pack 2")
        #expect(w.architecture == "x86")
        #expect(w.controlSet == "ControlSet001")
        #expect(w.systemRoot == "\\WINDOWS")
        #expect(w.hal == "acpiapic_up" && w.halMultiprocessor == false && w.halFile == "halaacpi.dll")
        #expect(w.computerName == "OLDBOX")
        #expect(w.rtcLocalTime)
        #expect(w.vmwareTools)
        let atapi = try #require(w.drivers.first { $0.name == "atapi" })
        #expect(atapi.installed && atapi.start == 4 && atapi.fileExists)
        let viostor = try #require(w.drivers.first { $0.name == "viostor" })
        #expect(!viostor.installed && !viostor.fileExists)
        #expect(w.criticalDevices.allSatisfy { !$0.present })
        #expect(report.verdict("boot-ide")?.ok == false)
        #expect(report.verdict("boot-ide")?.reason.contains("8086&DEV_7010") == true)
        #expect(report.verdict("boot-ide")?.reason.contains("atapi Start=4") == true)
        #expect(report.verdict("boot-virtio-blk")?.ok == false)
        #expect(report.verdict("vcpus")?.ok == false)
        #expect(report.verdict("cpu-model")?.fix.contains("qemu64") == true)
        #expect(report.verdict("rtc")?.ok == false)
        #expect(report.verdict("vmware-tools")?.ok == false)
        #expect(report.verdict("intelppm")?.ok == false)
        #expect(report.verdict("alignment") != nil)
        #expect(report.verdict("hibernated") == nil)
        #expect(device.bytesRead < 8 << 20)
        #expect(report.summary.contains("[FAIL] boot-ide"))
    }

    @Test func mergeIDEGuestBootsOnIDE() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try WindowsProfile.mergeIDE2003.image(in: dir, layout: "mbr63") else { return }
        let (report, _) = try Self.inspect(path)
        let w = try #require(report.windows)
        let piix3 = try #require(w.criticalDevices.first { $0.id == "8086:7010" })
        #expect(piix3.present && piix3.service == "intelide" && piix3.serviceReady)
        #expect(w.criticalDevices.first { $0.id == "8086:7111" }?.serviceReady == true)
        #expect(report.verdict("boot-ide")?.ok == true)
        #expect(report.verdict("boot-virtio-blk")?.ok == false)
        #expect(report.verdict("vcpus")?.ok == true)
        #expect(report.verdict("intelppm") == nil)
        #expect(report.verdict("vmware-tools") == nil)
    }

    /// Only the generic PCI\CC_0101 → pciide entry (no PIIX3-specific one): still bootable on IDE.
    @Test func genericIDEClassEntryIsEnough() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var profile = WindowsProfile.vmwareSCSI2003
        profile.services.merge(["atapi": 0, "pciide": 0]) { $1 }
        profile.criticalDevices["pci#cc_0101"] = "pciide"
        guard let path = try profile.image(in: dir, layout: "mbr63") else { return }
        let (report, _) = try Self.inspect(path)
        #expect(report.windows?.criticalDevices.first { $0.id == "class:0101" }?.serviceReady == true)
        #expect(report.verdict("boot-ide")?.ok == true)
        #expect(report.verdict("boot-ide")?.reason.contains("CC_0101") == true)
        // Without pciide.sys the same entry does not help.
        profile.driverFiles.removeAll { $0 == "pciide.sys" }
        guard let broken = try profile.image(in: dir.appendingPathComponent("b"), layout: "mbr63") else { return }
        #expect(try Self.inspect(broken).0.verdict("boot-ide")?.ok == false)
    }

    @Test func virtioXPBootsOnVirtio() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try WindowsProfile.virtioXP.image(in: dir, layout: "mbr1m") else { return }
        let (report, _) = try Self.inspect(path)
        #expect(report.partitions.first?.alignment == "1MiB")
        let w = try #require(report.windows)
        #expect(w.version == "5.1" && w.productName == "Microsoft Windows XP")
        let blk = try #require(w.criticalDevices.first { $0.id == "1af4:1001" })
        #expect(blk.present && blk.key == "pci#ven_1af4&dev_1001&subsys_00021af4&rev_00" && blk.serviceReady)
        #expect(report.verdict("boot-virtio-blk")?.ok == true)
        #expect(report.verdict("boot-virtio-scsi")?.ok == false)
        #expect(report.verdict("boot-virtio-scsi")?.fix.contains("vioscsi") == true)
        #expect(report.verdict("boot-ide")?.ok == false)  // no PIIX3 CDB entry
        #expect(report.verdict("hidden-sectors") == nil)
        // mkntfs wrote 255 heads; XP on a disk under 2 GB needs 64 on QEMU.
        #expect(report.verdict("ntfs-heads")?.fix.contains("64") == true)
    }

    @Test func server2008x64OnGPT() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sgdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try WindowsProfile.server2008x64.image(in: dir, layout: "gpt") else { return }
        let (report, _) = try Self.inspect(path)
        #expect(report.partitionTable == "gpt")
        #expect(report.partitions.first?.typeName == "Microsoft basic data")
        let w = try #require(report.windows)
        #expect(w.architecture == "x64")
        #expect(w.version == "6.0")
        #expect(!w.rtcLocalTime)
        #expect(w.halMultiprocessor == true)
        #expect(report.verdict("rtc")?.ok == true)
        #expect(report.verdict("cpu-model")?.ok == true)
        #expect(report.verdict("boot-ide")?.ok == true)
        #expect(report.verdict("gpt-legacy-windows") == nil)
        #expect(report.verdict("intelppm")?.ok == false)
    }

    @Test func partitionOnlyImageIsABlocker() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try WindowsProfile.mergeIDE2003.image(in: dir, layout: "volume") else { return }
        let (report, _) = try Self.inspect(path)
        #expect(report.partitionTable == "none")
        #expect(!report.wholeDisk)
        #expect(report.volume?.type == "ntfs")
        #expect(report.volumeHiddenSectors == 63)
        let v = try #require(report.verdict("whole-disk"))
        #expect(!v.ok && v.severity == .blocker && v.reason.contains("LBA 63"))
        #expect(report.windows?.partition == 0)
    }

    /// The seed's unbootable copy: a 2003 partition (made at LBA 63) put into a new table at 1 MiB.
    @Test func partitionCopiedIntoANewTableIsABlocker() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try WindowsProfile.mergeIDE2003.image(in: dir, layout: "moved") else { return }
        let (report, _) = try Self.inspect(path)
        #expect(report.windows?.bootSectorHiddenSectors == 63 && report.windows?.partitionStartLBA == 2048)
        let v = try #require(report.verdict("hidden-sectors"))
        #expect(!v.ok && v.severity == .blocker && v.fix.contains("2048"))
        #expect(report.verdict("ntfs-heads") == nil)  // 2003: heads not needed
    }

    @Test func hibernatedAndDirtyHiveAreReported() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var profile = WindowsProfile.mergeIDE2003
        profile.hiberfil = "hibr"
        profile.dirtySystemHive = true
        guard let path = try profile.image(in: dir, layout: "mbr1m") else { return }
        let (report, _) = try Self.inspect(path)
        #expect(report.windows?.hibernated == true)
        #expect(report.verdict("hibernated")?.severity == .blocker)
        #expect(report.verdict("hive-dirty")?.ok == false)
        var clean = WindowsProfile.mergeIDE2003
        clean.hiberfil = "wake"
        guard let cleanPath = try clean.image(in: dir.appendingPathComponent("clean"), layout: "mbr1m") else { return }
        let (cleanReport, _) = try Self.inspect(cleanPath)
        #expect(cleanReport.windows?.hibernated == false)
        #expect(cleanReport.verdict("hibernated") == nil)
        #expect(cleanReport.verdict("hive-dirty") == nil)
    }

    @Test func unreadableSystemHiveIsNotTakenForMissingDrivers() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var profile = WindowsProfile.mergeIDE2003
        profile.brokenSystemHive = true
        guard let path = try profile.image(in: dir, layout: "mbr1m") else { return }
        let (report, _) = try Self.inspect(path)
        let w = try #require(report.windows)
        #expect(!w.systemHiveReadable)
        #expect(w.productName == "Microsoft Windows Server 2003")
        #expect(report.verdict("system-hive")?.severity == .blocker)
        #expect(report.verdict("boot-ide") == nil)
        #expect(report.warnings.contains { $0.contains("SYSTEM hive unreadable") })
    }

    @Test func linuxDiskFileSystems() throws {
        guard GuestTools.require("sfdisk", "mkfs.ext4", "mkswap", "mkfs.vfat") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("linux.img").path
        guard try GuestTools.makeFixture(["linux", path]) else { return }
        let (report, device) = try Self.inspect(path)
        let byIndex = Dictionary(uniqueKeysWithValues: report.partitions.map { ($0.index, $0) })
        #expect(report.partitions.map(\.index) == [1, 2, 3, 5, 6])
        #expect(byIndex[1]?.filesystem == "ext4" && byIndex[1]?.label == "rootfs" && byIndex[1]?.uuid == "0a0b0c0d-1111-2222-3333-444455556666")
        #expect(byIndex[2]?.filesystem == "swap" && byIndex[2]?.label == "swapper")
        #expect(byIndex[3]?.type == "0x05")
        #expect(byIndex[5]?.filesystem == "fat32" && byIndex[5]?.label == "FATDATA" && byIndex[5]?.uuid == "1234-ABCD" && byIndex[5]?.logical == true)
        #expect(byIndex[6]?.filesystem == "ext3" && byIndex[6]?.label == "olddata")
        #expect(report.windows == nil)
        #expect(report.verdict("linux-boot") != nil)
        #expect(device.bytesRead < 1 << 20)
        // The JSON keys the lead relies on.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any]
        #expect(json?["partitionTable"] as? String == "mbr")
        let first = (json?["partitions"] as? [[String: Any]])?.first
        #expect(first?["filesystem"] as? String == "ext4")
        #expect(first?["aligned"] as? Bool == true)
        #expect(json?["verdicts"] is [[String: Any]])
    }
}

@Suite struct InspectBudgetTests {
    /// A disk whose NTFS volume spans it (sparse file): inspect must read metadata only, so the
    /// bytes read do not grow with the disk. 2 GiB keeps fixture time to seconds; the same
    /// fixture at 51200 MiB (FERRY_BIG_DISK_MIB=51200) read the same 423 KiB.
    @Test func largeDiskReadsOnlyMetadata() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tree = dir.appendingPathComponent("tree")
        try GuestTools.writeTree(tree, WindowsProfile.mergeIDE2003.tree())
        let path = dir.appendingPathComponent("big.img").path
        let mib = ProcessInfo.processInfo.environment["FERRY_BIG_DISK_MIB"] ?? "2048"
        guard try GuestTools.makeFixture(["ntfs", path, "mbr63", tree.path, mib]) else { return }
        let device = ReadCountingDevice(try FileDevice.openForReading(path))
        // Only the bytes read are asserted; the time it takes is Benchmarks/formats.sh's (d).
        let report = try GuestInspector.inspect(device)
        print("inspect \(device.size >> 20) MiB disk: read \(device.bytesRead) bytes in \(device.reads) reads")
        #expect(device.size > 2 << 30)
        #expect(report.windows?.productName == "Microsoft Windows Server 2003")
        #expect(device.bytesRead <= 64 << 20)
    }
}
