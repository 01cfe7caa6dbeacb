@testable import FerryTarget
import FerryTestSupport
import Foundation
import Testing

/// Every renderer's output for every fixture, against the committed golden files
/// (Fixtures/Golden/<fixture>.<target>). The guest facts are the ones each fixture's guest
/// would give inspect, so the table is exercised the way `ferry plan` uses it.
/// `FERRY_WRITE_GOLDEN=1 swift test --filter RendererGoldenTests` rewrites them after a deliberate change.
@Suite struct RendererGoldenTests {
    static let golden = Fixture.directory.appendingPathComponent("Golden")

    /// What inspect says about each fixture's guest, and the disks given for it.
    static func inputs(_ name: String) throws -> (SourceMachine, GuestFacts, [Planner.GivenDisk]) {
        let machine = try Fixture.machine(name)
        let facts: GuestFacts
        switch name {
        case "esxi5-win2003": facts = PlannerTests.xpPrepared
        case "esxi6-winxp": facts = GuestFacts(os: .windows, windowsVersion: "5.1", architecture: "x86", halMultiprocessor: false, rtcLocalTime: true, partitionTable: "mbr", verdicts: ["boot-ide": true, "boot-virtio-blk": true])
        case "esxi65-win2000": facts = GuestFacts(os: .windows, windowsVersion: "5.0", architecture: "x86", rtcLocalTime: true, partitionTable: "mbr", verdicts: ["boot-ide": true])
        case "esxi7-win2008": facts = GuestFacts(os: .windows, windowsVersion: "6.0", architecture: "x64", halMultiprocessor: true, rtcLocalTime: true, partitionTable: "mbr", verdicts: ["boot-virtio-blk": false, "boot-virtio-scsi": true])
        case "esxi8-win2019-efi": facts = GuestFacts(os: .windows, windowsVersion: "10.0", architecture: "x64", rtcLocalTime: false, partitionTable: "gpt", efiSystemPartition: true, verdicts: ["boot-virtio-blk": true])
        default: facts = GuestFacts(os: .linux, partitionTable: name.contains("efi") ? "gpt" : "mbr", efiSystemPartition: name.contains("efi"))
        }
        let disks = machine.disks.enumerated().map { i, d in
            Planner.GivenDisk(path: i == 0 ? "/dev/ferry/\(Planner.hostName(machine.name ?? "vm"))" : "/srv/ferry/\(d.fileName.split(separator: "/").last ?? "")".replacing(".vmdk", with: ".qcow2"),
                format: i == 0 ? "raw" : "qcow2", size: UInt64(8 + i) << 30)
        }
        return (machine, facts, disks)
    }

    static func plan(_ name: String) throws -> TargetPlan {
        let (machine, facts, disks) = try inputs(name)
        var plan = Planner.plan(machine: machine, guest: facts, disks: disks)
        plan.warnings += TargetKind.ganeti.limits(plan)
        return plan
    }

    @Test(arguments: Fixture.all)
    func matchesGolden(_ name: String) throws {
        let plan = try Self.plan(name)
        var options = RenderOptions(bridge: "br-vm")
        options.ganetiNode = "node1.example.org"
        for target in TargetKind.allCases {
            let text = target.render(plan, options)
            let file = Self.golden.appendingPathComponent("\(name).\(target.rawValue)")
            if ProcessInfo.processInfo.environment["FERRY_WRITE_GOLDEN"] == "1" {
                try FileManager.default.createDirectory(at: Self.golden, withIntermediateDirectories: true)
                try Data(text.utf8).write(to: file)
                continue
            }
            let expected = try String(contentsOf: file, encoding: .utf8)
            #expect(text == expected, "\(name).\(target.rawValue) differs from its golden file")
        }
    }

    @Test func ganetiEscapesCommasAndAdoptsLogicalVolumes() throws {
        let plan = try Self.plan("esxi5-win2003")
        let text = GanetiRenderer.render(plan)
        #expect(text.contains("--disk 0:adopt=legacy-erp"))
        #expect(text.contains(#"kvm_extra=-smbios type=1\,uuid=564d6a1b-3c8e-2f44-9a10-7b21c3de550f'"#))
        #expect(text.contains("kernel_path=,disk_type=ide,cdrom_disk_type=ide,nic_type=e1000,cpu_type=qemu32"))
        #expect(text.contains("use_localtime=true") && text.contains("acpi=true") && text.contains("-B vcpus=1,maxmem=3072,minmem=3072"))
    }

    @Test func shellQuoting() {
        #expect(Shell.quote("plain-word_1.raw") == "plain-word_1.raw")
        #expect(Shell.quote("two words") == "'two words'")
        #expect(Shell.quote("it's") == #"'it'\''s'"#)
        #expect(Shell.quote("") == "''")
        #expect(Shell.quote("$(rm -rf /)") == "'$(rm -rf /)'")
    }

    @Test func qemuEscapesCommasInPaths() {
        var plan = Planner.plan(machine: nil, guest: GuestFacts(os: .linux), disks: [.init(path: "/srv/a,b.raw", format: "raw", size: 1 << 30)])
        plan.smbiosUUID = nil
        #expect(QEMURenderer.arguments(plan).contains("file=/srv/a,,b.raw,format=raw,if=none,id=disk0"))
    }
}

extension RendererGoldenTests {
    @Test func libvirtDiskNamesPastZ() {
        #expect([0, 1, 25, 26, 27, 51, 52, 701, 702].map(LibvirtRenderer.letters) == ["a", "b", "z", "aa", "ab", "az", "ba", "zz", "aaa"])
    }
}
