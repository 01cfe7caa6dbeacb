@testable import FerryTarget
import Testing

/// The decision table: one test per row that matters, each asserting the value and its reason.
@Suite struct PlannerTests {
    static let xpPrepared = GuestFacts(
        os: .windows, windowsVersion: "5.2", productName: "Microsoft Windows Server 2003", architecture: "x86", hal: "acpipic_up",
        halMultiprocessor: false, halACPI: true, rtcLocalTime: true, partitionTable: "mbr",
        verdicts: ["boot-ide": true, "boot-virtio-blk": false, "boot-virtio-scsi": false, "rtc": false])

    func choice(_ plan: TargetPlan, _ setting: String) -> TargetPlan.Choice? { plan.choices.first { $0.setting == setting } }

    @Test func windows2003OnIDEWithUniprocessorHAL() throws {
        let plan = Planner.plan(machine: try Fixture.machine("esxi5-win2003"), guest: Self.xpPrepared, disks: [.init(path: "/srv/legacy-erp.raw", format: "raw", size: 8 << 30)])
        #expect(plan.machine == "pc" && plan.disks.map(\.bus) == [.ide] && plan.nics.map(\.model) == [.e1000])
        #expect(plan.cpuModel == "qemu32" && plan.clock == .localtime && plan.acpi)
        #expect(plan.vcpus == 1, "uniprocessor HAL: the .vmx's 2 vCPUs become 1")
        #expect(choice(plan, "vcpus")?.reason.contains("uniprocessor HAL (acpipic_up)") == true)
        #expect(choice(plan, "disk-bus")?.reason.contains("verdict boot-ide: prepared") == true)
        #expect(plan.disks.first?.path == "/srv/legacy-erp.raw" && plan.disks.first?.source == "scsi0:0")
        #expect(plan.nics.first?.mac == "00:0c:29:de:55:0f" && plan.smbiosUUID == "564d6a1b-3c8e-2f44-9a10-7b21c3de550f")
        #expect(!plan.choices.contains { $0.guess && $0.setting != "guest" }, "\(plan.choices.filter(\.guess))")
    }

    @Test func virtioWhenViostorIsReady() {
        var facts = Self.xpPrepared
        facts.verdicts["boot-virtio-blk"] = true
        let plan = Planner.plan(machine: nil, guest: facts, disks: [.init(path: "d.raw", format: "raw", size: 1 << 30)])
        #expect(plan.disks.map(\.bus) == [.virtio])
        #expect(choice(plan, "disk-bus")?.reason.contains("boot-virtio-blk") == true)
    }

    @Test func unpreparedIDEIsABlockerWarning() {
        var facts = Self.xpPrepared
        facts.verdicts["boot-ide"] = false
        facts.fixes["boot-ide"] = "apply MergeIDE (KB314082) offline"
        let plan = Planner.plan(machine: nil, guest: facts, disks: [.init(path: "d.raw", format: "raw", size: 1 << 30)])
        #expect(plan.warnings.contains { $0.hasPrefix("blocker:") && $0.contains("0x7B") && $0.contains("MergeIDE") })
    }

    @Test func windows2000GetsRTL8139AndNeverVirtio() throws {
        var facts = GuestFacts(os: .windows, windowsVersion: "5.0", architecture: "x86", verdicts: ["boot-virtio-blk": true])
        facts.rtcLocalTime = true
        let plan = Planner.plan(machine: try Fixture.machine("esxi65-win2000"), guest: facts, disks: [])
        #expect(plan.disks.map(\.bus) == [.ide] && plan.nics.map(\.model) == [.rtl8139] && plan.cpuModel == "qemu32")
    }

    @Test func modernWindowsWithoutVirtioGetsSATAAndEFIStays() throws {
        let facts = GuestFacts(os: .windows, windowsVersion: "10.0", architecture: "x64", rtcLocalTime: true, partitionTable: "gpt", efiSystemPartition: true, verdicts: ["boot-virtio-blk": false])
        let plan = Planner.plan(machine: try Fixture.machine("esxi8-win2019-efi"), guest: facts, disks: [])
        #expect(plan.disks.map(\.bus) == [.sata, .sata, .sata, .sata])
        #expect(plan.firmware == .uefi && plan.secureBoot && plan.machine == "q35")
        #expect(plan.nics.count == 3 && plan.nics.allSatisfy { $0.model == .e1000 })
        #expect(plan.disks.allSatisfy(\.missing) && plan.warnings.filter { $0.contains("was not given") }.count == 4)
    }

    @Test func linuxGetsVirtioAsAGuessAndRenameWarning() throws {
        let plan = Planner.plan(machine: try Fixture.machine("esxi7-ubuntu-snapshot"), guest: GuestFacts(os: .linux, partitionTable: "mbr"), disks: [.init(path: "/dev/vg0/web", format: "raw", size: 20 << 30)])
        #expect(plan.disks.map(\.bus) == [.virtio] && plan.nics.map(\.model) == [.virtio, .virtio] && plan.clock == .utc && plan.cpuModel == "host")
        #expect(choice(plan, "disk-bus")?.guess == true)
        #expect(plan.warnings.contains { $0.contains("interface name may change") })
        #expect(plan.warnings.contains { $0.contains("consolidate") })
    }

    @Test func withoutVMXEverythingVMXOnlyIsAGuess() {
        let plan = Planner.plan(machine: nil, guest: nil, disks: [.init(path: "/tmp/Some Disk.qcow2", format: "qcow2", size: 1 << 30)])
        #expect(plan.name == "some-disk-qcow2")
        #expect(["guest", "firmware", "disk-bus", "memory", "vcpus", "rtc", "cpu"].allSatisfy { choice(plan, $0)?.guess == true })
        #expect(plan.warnings.contains { $0.hasPrefix("no .vmx") } && plan.warnings.contains { $0.hasPrefix("no guest facts") })
    }

    @Test func givenDisksPairWithVMXDisksByName() throws {
        let plan = Planner.plan(machine: try Fixture.machine("esxi7-win2008"), guest: nil, disks: [
            .init(path: "/srv/sql2008_1.raw", format: "raw", size: 1 << 30), .init(path: "/srv/sql2008.raw", format: "raw", size: 2 << 30),
        ])
        #expect(plan.disks.map(\.path) == ["/srv/sql2008.raw", "/srv/sql2008_1.raw"])
        #expect(plan.disks.map(\.source) == ["scsi0:0", "scsi0:1"])
    }

    @Test func guestOSFamilies() {
        #expect(Planner.family(machine: nil, guest: nil).0 == .unknown)
        for (os, family) in [("winnetenterprise", Planner.Family.windowsXP2003), ("winXPPro", .windowsXP2003), ("win2000AdvServ", .windows2000),
            ("windows9srv-64", .windowsModern), ("rhel7-64", .linux), ("otherGuest", .unknown)]
        {
            var m = try? Fixture.vmx("guestOS = \"\(os)\"\n")
            m?.warnings = []
            #expect(Planner.family(machine: m, guest: nil).0 == family, "\(os)")
        }
        #expect(Planner.guestOSIs64("winNetEnterprise-64") && !Planner.guestOSIs64("winNetEnterprise"))
    }
}
