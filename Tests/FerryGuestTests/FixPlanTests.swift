import FerryDisk
import FerryFix
import FerryGuest
import FerryRegistry
import FerryTestSupport
import Foundation
import Testing

/// `ferry fix`'s plans: what each step decides from inspect's facts and the hive, and, with
/// hivex as the independent writer, that the plan's content is what turns the verdicts green.
@Suite struct FixPlanTests {
    /// Builds `tree` into a disk image with the fixture script (mkntfs + ntfs-3g).
    static func image(_ tree: [String: [UInt8]], in dir: URL, name: String, layout: String = "mbr63", test: String = #function) throws -> String? {
        let root = dir.appendingPathComponent("tree-\(name)")
        try GuestTools.writeTree(root, tree)
        let path = dir.appendingPathComponent("\(name).img").path
        guard try GuestTools.makeFixture(["ntfs", path, layout, root.path], test: test) else { return nil }
        return path
    }

    static func plan(_ path: String, _ steps: [FixStepID]? = nil) throws -> (InspectionReport, FixPlan) {
        let disk = try FileDevice.openForReading(path)
        defer { try? disk.close() }
        let report = try GuestInspector.inspect(disk)
        return (report, try FixPlanner.plan(disk, report: report, steps: steps))
    }

    static func verdict(_ report: InspectionReport, _ id: String) -> Verdict? { report.verdicts.first { $0.id == id } }

    /// Merges `reg` into `hive` with hivexregedit (the oracle writer) and returns the result.
    static func hivexMerge(_ hive: [UInt8], reg: String, in dir: URL, name: String) throws -> [UInt8] {
        let hivePath = dir.appendingPathComponent("\(name).hive")
        let regPath = dir.appendingPathComponent("\(name).reg")
        try Data(hive).write(to: hivePath)
        try Data(reg.utf8).write(to: regPath)
        let merged = try GuestTools.run("hivexregedit", ["--merge", "--prefix", "HKEY_LOCAL_MACHINE\\SYSTEM", hivePath.path, regPath.path])
        #expect(merged.status == 0, "hivexregedit --merge: \(merged.stderr)")
        return Array(try Data(contentsOf: hivePath))
    }

    /// The seed story's guest (2003 on VMware's LSI SCSI): the plan's registry content, written
    /// by hivex (not by ferry), makes inspect's IDE verdict and the crash verdict green; planning
    /// again on the result finds nothing left to do, in both control sets Select names.
    @Test func mergeIDEPlanWrittenByHivexTurnsTheVerdictsGreen() throws {
        guard GuestTools.require("hivexregedit", "mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = WindowsProfile.vmwareSCSI2003
        guard let before = try Self.image(profile.tree(), in: dir, name: "before") else { return }
        let (report, plan) = try Self.plan(before)
        #expect(Self.verdict(report, "boot-ide")?.ok == false)
        #expect(Self.verdict(report, "crash-visible")?.ok == false)
        #expect(plan.controlSets == ["ControlSet001", "ControlSet002"])
        let mergeide = try #require(plan.steps.first { $0.id == .mergeide })
        #expect(mergeide.state == .apply)
        // 31 CDB keys and 3 services per control set; atapi's Start etc. only where they differ.
        #expect(mergeide.edits.contains { $0.kind == .createKey && $0.keyPath == "ControlSet001\\Control\\CriticalDeviceDatabase\\pci#ven_8086&dev_7010" })
        #expect(mergeide.edits.contains { $0.keyPath == "ControlSet002\\Services\\IntelIde" })
        #expect(plan.steps.first { $0.id == .virtioStorage }?.state == .notApplicable)
        // mkntfs wrote 255 heads; NT 5.x boot code on QEMU's geometry for a disk this small needs 64.
        let geometry = try #require(plan.steps.first { $0.id == .ntfsGeometry })
        #expect(geometry.state == .apply && geometry.notes == ["heads 255 → 64"])
        #expect(geometry.sectors.map(\.what) == ["NTFS boot sector", "NTFS backup boot sector"])

        let merged = try Self.hivexMerge(profile.systemHive(), reg: RegText.render(plan.edits), in: dir, name: "system")
        var tree = profile.tree()
        tree["WINDOWS/system32/config/SYSTEM"] = merged
        guard let after = try Self.image(tree, in: dir, name: "after") else { return }
        let (fixed, replan) = try Self.plan(after)
        #expect(Self.verdict(fixed, "boot-ide")?.ok == true, "\(Self.verdict(fixed, "boot-ide")?.reason ?? "")")
        #expect(Self.verdict(fixed, "crash-visible")?.ok == true)
        // The boot sector is not in the hive: only the registry steps are done now.
        for step in replan.steps where step.id != .ntfsGeometry {
            #expect(step.state != .apply, "\(step.id) still has \(step.edits.count) edits after hivex merged the plan")
        }
    }

    /// A boot-start service without its file stops with 0x7B as well: with pciidex.sys missing
    /// the step is refused and says where the file comes from.
    @Test func mergeIDEIsRefusedWhenADriverFileIsMissing() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var profile = WindowsProfile.vmwareSCSI2003
        profile.driverFiles.removeAll { $0 == "pciidex.sys" }
        guard let path = try Self.image(profile.tree(), in: dir, name: "nofile") else { return }
        let (_, plan) = try Self.plan(path, [.mergeide])
        let step = try #require(plan.steps.first)
        #expect(step.state == .refused)
        #expect(step.notes.joined().contains("pciidex.sys missing"))
        #expect(step.notes.joined().contains("driver.cab"))
    }

    /// Windows 8+ ignores the CriticalDeviceDatabase; XP with viostor.sys gets the virtio step.
    @Test func stepsFollowTheWindowsVersion() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var win8 = WindowsProfile.server2008x64
        win8.version = "6.3"
        win8.driverDatabase = true
        guard let path8 = try Self.image(win8.tree(), in: dir, name: "win8", layout: "mbr1m") else { return }
        let (_, plan8) = try Self.plan(path8)
        #expect(plan8.steps.first { $0.id == .mergeide }?.state == .notApplicable)
        #expect(plan8.steps.first { $0.id == .virtioStorage }?.state == .notApplicable)
        #expect(plan8.steps.first { $0.id == .ntfsGeometry }?.state == .done)

        guard let pathXP = try Self.image(WindowsProfile.virtioXP.tree(), in: dir, name: "xp") else { return }
        let (_, planXP) = try Self.plan(pathXP, [.virtioStorage, .cpuDrivers])
        let virtio = try #require(planXP.steps.first { $0.id == .virtioStorage })
        #expect(virtio.state == .apply)
        #expect(virtio.edits.contains { $0.keyPath == "ControlSet001\\Control\\CriticalDeviceDatabase\\PCI#VEN_1AF4&DEV_1042&REV_01" })
        #expect(!virtio.edits.contains { $0.keyPath.hasSuffix("vioscsi") }, "vioscsi.sys is not on the disk")
        #expect(planXP.steps.first { $0.id == .cpuDrivers }?.state == .notApplicable)
    }

    /// The `.reg` text: what regedit and hivexregedit read, every value byte for byte.
    @Test func regFileRendersEveryKindOfEdit() {
        let text = RegText.render([
            RegistryEdit(.system, ["ControlSet001", "Services", "atapi"], .createKey),
            .dword(.system, ["ControlSet001", "Services", "atapi"], "Start", 0),
            .string(.system, ["ControlSet001", "Services", "atapi"], "Group", "SCSI"),
            RegistryEdit(.system, ["ControlSet001", "Services", "atapi"], .deleteValue(name: "Tag")),
            .string(.system, ["A"], "", "x\"y"),
        ])
        #expect(text == """
            Windows Registry Editor Version 5.00\r
            \r
            [HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\atapi]\r
            "Start"=dword:00000000\r
            "Group"=hex(1):53,00,43,00,53,00,49,00,00,00\r
            "Tag"=-\r
            \r
            [HKEY_LOCAL_MACHINE\\SYSTEM\\A]\r
            @=hex(1):78,00,22,00,79,00,00,00\r

            """)
    }

    @Test func theMergeIDEDataIsTheWholePatch() {
        let edits = MergeIDE.edits(controlSet: "ControlSet001")
        let cdb = edits.filter { $0.kind == .createKey && $0.path.count == 4 && $0.path[2] == "CriticalDeviceDatabase" }
        #expect(cdb.count == 31)
        #expect(Set(MergeIDE.criticalDevices.map(\.key)).count == 31)
        #expect(MergeIDE.criticalDevices.filter { $0.service == "intelide" }.count == 7)
        let starts = edits.filter { if case .setValue("Start", _, let data) = $0.kind { return data == [0, 0, 0, 0] } else { return false } }
        #expect(starts.map { $0.path.last ?? "" } == ["atapi", "IntelIde", "PCIIde"])
    }
}
