import FerryDisk
import FerryGuest
import FerryTestSupport
import Foundation
import Testing

/// Issue 16: the shapes real third-party hives and volumes have, where inspect disagreed with
/// hivex and blkid. Each fact is compared with what hivexget or blkid reads from the same bytes.
@Suite struct RealGuestShapeTests {
    static func inspect(_ profile: WindowsProfile, layout: String = "mbr63", test: String = #function) throws -> InspectionReport? {
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try profile.image(in: dir, layout: layout, test: test) else { return nil }
        let disk = try FileDevice.openForReading(path)
        defer { try? disk.close() }
        return try GuestInspector.inspect(disk)
    }

    static func hivexget(_ hive: [UInt8], _ key: String, _ value: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-hivexget-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: path) }
        try Data(hive).write(to: path)
        let r = try GuestTools.run("hivexget", [path.path, key, value])
        #expect(r.status == 0, "hivexget: \(r.stderr)")
        return r.text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static var tools: Bool { GuestTools.require("mkntfs", "ntfs-3g", "sfdisk", "hivexget") }

    /// 64-bit Windows has one HAL file, hal.dll, whatever the HAL id; the UP/MP verdict still
    /// follows the id hivex reads.
    @Test func x64GuestsReportHalDllAndKeepTheProcessorVerdict() throws {
        guard Self.tools else { return }
        var profile = WindowsProfile.server2008x64
        profile.product = "Microsoft Windows XP Professional x64 Edition"
        profile.version = "5.2"
        for (hal, multiprocessor) in [("acpiapic_up", false), ("acpiapic_mp", true)] {
            profile.hal = hal
            guard let report = try Self.inspect(profile), let w = report.windows else { return }
            #expect(try Self.hivexget(profile.systemHive(), "\\ControlSet001\\Enum\\Root\\ACPI_HAL\\0000", "HardwareID") == hal)
            #expect(w.hal == hal && w.architecture == "x64")
            #expect(w.halFile == "hal.dll", "\(hal): \(w.halFile ?? "nil")")
            #expect(w.halMultiprocessor == multiprocessor)
            #expect(report.verdicts.first { $0.id == "vcpus" }?.ok == multiprocessor)
        }
    }

    /// `CurrentBuild` marked obsolete is never the build; without `CurrentVersion` the version
    /// comes from the product name, so the 5.x CPU-model warning is not skipped.
    @Test func buildComesFromCurrentBuildNumberAndVersionFromTheProductName() throws {
        guard Self.tools else { return }
        var xp = WindowsProfile.virtioXP
        xp.currentBuild = "1.511.1 () (Obsolete data - do not use)"
        xp.currentVersionMissing = true
        guard let report = try Self.inspect(xp), let w = report.windows else { return }
        #expect(try Self.hivexget(xp.softwareHive(), "\\Microsoft\\Windows NT\\CurrentVersion", "CurrentBuildNumber") == "2600")
        #expect(w.build == "2600")
        #expect(w.version == "5.1" && w.versionInferred == true)
        #expect(report.verdicts.first { $0.id == "cpu-model" }?.ok == false)
    }

    /// Setup media hold `Select\Current = 0`: Default, else the lowest existing set, and said.
    @Test func currentZeroFallsBackToDefaultThenTheLowestSet() throws {
        guard Self.tools else { return }
        var setup = WindowsProfile.vmwareSCSI2003
        setup.selectCurrent = 0
        guard let viaDefault = try Self.inspect(setup) else { return }
        #expect(try Self.hivexget(setup.systemHive(), "\\Select", "Current") == "0")
        #expect(viaDefault.windows?.controlSet == "ControlSet001")
        #expect(viaDefault.windows?.systemHiveReadable == true)
        setup.selectDefault = 0
        guard let lowest = try Self.inspect(setup) else { return }
        #expect(lowest.windows?.controlSet == "ControlSet001")
        #expect(lowest.warnings.contains { $0.contains("using the lowest existing one, ControlSet001") }, "\(lowest.warnings)")
        #expect(lowest.verdicts.first { $0.id == "boot-ide" }?.ok == false, "judged on the real set, not reported unreadable")
    }

    /// Current and Default differ: both are reported and Default (what Windows boots after a
    /// normal shutdown) is judged. ControlSet002 here has atapi boot-start and nothing else.
    @Test func whenCurrentAndDefaultDifferDefaultIsJudged() throws {
        guard Self.tools else { return }
        var profile = WindowsProfile.mergeIDE2003
        profile.selectCurrent = 2
        guard let report = try Self.inspect(profile), let w = report.windows else { return }
        #expect(w.currentControlSet == "ControlSet002" && w.defaultControlSet == "ControlSet001")
        #expect(w.controlSet == "ControlSet001")
        #expect(report.warnings.contains { $0.contains("Select\\Current is ControlSet002 but Select\\Default is ControlSet001") })
        #expect(report.verdicts.first { $0.id == "boot-ide" }?.ok == true)
    }

    /// A hive cut short still has its base block: dirty is reported even though nothing else reads.
    @Test func aTruncatedDirtyHiveIsReportedDirty() throws {
        guard Self.tools else { return }
        var profile = WindowsProfile.vmwareSCSI2003
        profile.dirtySystemHive = true
        profile.truncateSystemHive = 4096 + 200
        guard let report = try Self.inspect(profile), let w = report.windows else { return }
        #expect(w.systemHiveReadable == false)
        #expect(w.systemHiveDirty == true)
        #expect(report.verdicts.contains { $0.id == "hive-dirty" })
    }

    /// A bare NTFS volume (a partition-only copy) shows its label as blkid does, also after ntfslabel.
    @Test func bareNTFSVolumesShowTheirLabel() throws {
        guard Self.tools, GuestTools.require("blkid", "ntfslabel") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try WindowsProfile.vmwareSCSI2003.image(in: dir, layout: "volume") else { return }
        for label in ["FERRYTEST", "SYSTEM-C"] {
            if label != "FERRYTEST" { #expect(try GuestTools.run("ntfslabel", [path, label]).status == 0) }
            let blkid = try GuestTools.run("blkid", ["-p", "-o", "value", "-s", "LABEL", path]).text.trimmingCharacters(in: .whitespacesAndNewlines)
            let disk = try FileDevice.openForReading(path)
            let report = try GuestInspector.inspect(disk)
            try disk.close()
            #expect(blkid == label)
            #expect(report.volume?.label == blkid)
        }
    }

    /// LVM ids print as `pvs` and blkid print them: 6-4-4-4-4-4-6.
    @Test func lvmPhysicalVolumeUUIDsAreDashed() throws {
        guard GuestTools.require("pvcreate", "blkid", "losetup"), Tools.requireRoot("pvcreate needs a loop device") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("pv.img").path
        #expect(FileManager.default.createFile(atPath: file, contents: nil))
        #expect(truncate(file, 16 << 20) == 0)
        guard let loop = try LoopDevice.attach(file) else { return }
        defer { LoopDevice.detach(loop) }
        let created = try GuestTools.run("pvcreate", ["-ff", "-y", "--devicesfile", "", loop])
        #expect(created.status == 0, "pvcreate: \(created.stderr)")
        let blkid = try GuestTools.run("blkid", ["-p", "-o", "value", "-s", "UUID", loop]).text.trimmingCharacters(in: .whitespacesAndNewlines)
        let disk = try FileDevice.openForReading(file)
        defer { try? disk.close() }
        let report = try GuestInspector.inspect(disk)
        #expect(report.volume?.type == "lvm2")
        #expect(report.volume?.uuid == blkid && blkid.count == 38, "ferry \(report.volume?.uuid ?? "nil"), blkid \(blkid)")
    }
}
