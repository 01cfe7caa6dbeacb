import FerryTestSupport
import Foundation
import Testing

/// The `ferry` binary with `esxi://` sources: the same bytes as qemu-img reads from the
/// datastore, and one line plus a documented exit code (nothing written) when the host refuses.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ESXiCommandTests {
    @Test func copyAndInspectThroughTheBinary() throws {
        guard Tools.require("qemu-img", why: "makes the VMDK and reads it as the oracle"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        try ESXiReadTests.rawImage(dir.file("src.raw"), size: 9 << 20, seed: 71)
        try FileManager.default.createDirectory(atPath: sim.file("db"), withIntermediateDirectories: true)
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), sim.file("db/db.vmdk"))
        try (VCSim.password + "\n").write(toFile: dir.file("pw"), atomically: true, encoding: .utf8)
        let env = "FERRY_ESXI_PASSWORD_FILE='\(dir.file("pw"))' "
        let uri = sim.uri("db/db.vmdk")
        let copy = try FerryExecutable.shell(env + "'\(FerryExecutable.path)' copy '\(uri)' '\(dir.file("out.raw"))'")
        #expect(copy.status == 0, "\(copy.stderr)")
        let copied = try Data(contentsOf: URL(fileURLWithPath: dir.file("out.raw")))
        #expect(Array(copied) == (try ESXiReadTests.oracle(sim.file("db/db.vmdk"), dir)))
        let inspect = try FerryExecutable.shell(env + "'\(FerryExecutable.path)' inspect '\(uri)'")
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("vmdk"), "\(inspect.stdout)")

        // Wrong password: exit 77, one line, no target file.
        try "wrong\n".write(toFile: dir.file("bad"), atomically: true, encoding: .utf8)
        let refused = try FerryExecutable.shell("FERRY_ESXI_PASSWORD_FILE='\(dir.file("bad"))' '\(FerryExecutable.path)' copy '\(uri)' '\(dir.file("no.raw"))'")
        #expect(refused.status == 77, "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("no.raw")))
        // A pin that does not match: 77 too; `..`: usage (64); a missing file: 66.
        let other = String(repeating: "11:", count: 31) + "11"
        let pinned = try FerryExecutable.shell(env + "'\(FerryExecutable.path)' inspect '\(sim.uri("db/db.vmdk", pin: false))?fingerprint=\(other)'")
        #expect(pinned.status == 77, "\(pinned.stderr)")
        let escape = try FerryExecutable.shell(env + "'\(FerryExecutable.path)' inspect 'esxi://root@\(sim.host):\(sim.port)/[\(sim.datastore)] ../x.vmdk'")
        #expect(escape.status == 64, "\(escape.stderr)")
        let missing = try FerryExecutable.shell(env + "'\(FerryExecutable.path)' inspect '\(sim.uri("db/none.vmdk"))'")
        #expect(missing.status == 66, "\(missing.stderr)")
    }

    /// `ferry esxi ls` lists the VMs; a VM named by name is copied; a running one is refused
    /// with exit 75 and nothing written, and copied with --force (the flags on the command line).
    @Test func esxiLsAndAVMByName() throws {
        guard Tools.require("qemu-img", why: "makes the VM's VMDK and reads it as the oracle"), let sim = try VCSim(["-power", "on"]) else { return }
        let dir = try TemporaryDirectory()
        try (VCSim.password + "\n").write(toFile: dir.file("pw"), atomically: true, encoding: .utf8)
        let flags = "--password-file '\(dir.file("pw"))' --esxi-fingerprint \(sim.fingerprint)"
        let ls = try FerryExecutable.shell("'\(FerryExecutable.path)' esxi ls root@\(sim.host):\(sim.port) \(flags)")
        #expect(ls.status == 0, "\(ls.stderr)")
        let lines = ls.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("2 VMs") == true, "\(ls.stdout)")
        #expect(lines.dropFirst().first?.hasPrefix("VM") == true && lines.dropFirst().first?.contains("PROVISIONED") == true, "\(ls.stdout)")
        let json = try FerryExecutable.shell("'\(FerryExecutable.path)' esxi ls root@\(sim.host):\(sim.port) \(flags) --json")
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let vms = try #require(object["vms"] as? [[String: Any]])
        let names = vms.compactMap { $0["name"] as? String }
        #expect(names.count == 2)
        for name in names { #expect(lines.contains { $0.hasPrefix(name + " ") && $0.contains(" on ") }, "\(name) in \(ls.stdout)") }
        let name = try #require(names.first)
        let disk = try #require((vms.first?["disks"] as? [[String: Any]])?.first?["fileName"] as? String)
        try ESXiReadTests.rawImage(dir.file("src.raw"), size: 5 << 20, seed: 73)
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), sim.file(datastorePath: disk))
        let uri = "esxi://root@\(sim.host):\(sim.port)/\(name)"
        let refused = try FerryExecutable.shell("'\(FerryExecutable.path)' copy '\(uri)' '\(dir.file("out.raw"))' \(flags)")
        #expect(refused.status == 75, "\(refused.stderr)")
        #expect(refused.stderr.contains("is running"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.raw")))
        let forced = try FerryExecutable.shell("'\(FerryExecutable.path)' copy '\(uri)' '\(dir.file("out.raw"))' \(flags) --force")
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stderr.contains("crash-consistent at best"), "\(forced.stderr)")
        let copied = try Data(contentsOf: URL(fileURLWithPath: dir.file("out.raw")))
        #expect(Array(copied) == (try ESXiReadTests.oracle(sim.file(datastorePath: disk), dir)))
        let badPin = try FerryExecutable.shell("'\(FerryExecutable.path)' esxi ls root@\(sim.host):\(sim.port) --password-file '\(dir.file("pw"))' --esxi-fingerprint 12:34")
        #expect(badPin.status == 64, "\(badPin.stderr)")
    }

    /// `ferry esxi report`: one entry per VM with its disks' verdicts, reading metadata only
    /// (a fraction of a fully allocated disk), and a disk that cannot be read named, not fatal.
    @Test func esxiReportReadsMetadataOnly() throws {
        guard Tools.require("qemu-img", why: "makes the VM's VMDK"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        try (VCSim.password + "\n").write(toFile: dir.file("pw"), atomically: true, encoding: .utf8)
        let flags = "--password-file '\(dir.file("pw"))' --esxi-fingerprint \(sim.fingerprint)"
        let vms = try VSphereTests.machines(sim)
        let first = try #require(vms.first), firstDisk = try #require(first.disks.first)
        var random = SeededRandom(seed: 75)
        try Data(random.bytes(32 << 20)).write(to: URL(fileURLWithPath: dir.file("src.raw")))
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), sim.file(datastorePath: firstDisk.fileName))
        let before = try sim.stats()["bytes"] ?? 0
        let report = try FerryExecutable.shell("'\(FerryExecutable.path)' esxi report root@\(sim.host):\(sim.port) \(flags) --json")
        #expect(report.status == 0, "\(report.stderr)")
        let served = (try sim.stats()["bytes"] ?? 0) - before
        #expect(served < 8 << 20, "the report read \(served) bytes of a 32 MiB allocated disk")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [[String: Any]])
        #expect(entries.count == vms.count)
        let byName = Dictionary(uniqueKeysWithValues: entries.compactMap { e in (e["name"] as? String).map { ($0, e) } })
        let inspected = try #require((byName[first.name]?["disks"] as? [[String: Any]])?.first)
        #expect(inspected["error"] == nil, "\(inspected)")
        #expect((inspected["verdicts"] as? [[String: Any]])?.isEmpty == false, "\(inspected)")
        let other = try #require(vms.dropFirst().first)
        let broken = try #require((byName[other.name]?["disks"] as? [[String: Any]])?.first)
        #expect(broken["error"] != nil, "the simulator's own empty disk file is not an image: \(broken)")
        let text = try FerryExecutable.shell("'\(FerryExecutable.path)' esxi report root@\(sim.host):\(sim.port) \(flags)")
        #expect(text.status == 0 && text.stdout.contains("\(first.name): poweredOff") && text.stdout.contains("cannot inspect"), "\(text.stdout)")
    }

    /// `ferry plan --vmx esxi://USER@HOST/VM`: the .vmx read from the host and the VM's disks
    /// inspected there, with no file on this machine.
    @Test func planReadsTheVMFromTheHost() throws {
        guard Tools.require("qemu-img", why: "makes the VM's VMDK"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        try (VCSim.password + "\n").write(toFile: dir.file("pw"), atomically: true, encoding: .utf8)
        let flags = "--password-file '\(dir.file("pw"))' --esxi-fingerprint \(sim.fingerprint)"
        let vm = try #require(try VSphereTests.machines(sim).first)
        let disk = try #require(vm.disks.first), vmx = try #require(vm.vmxPath)
        try ESXiReadTests.rawImage(dir.file("src.raw"), size: 4 << 20, seed: 76)
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), sim.file(datastorePath: disk.fileName))
        try Data("""
            .encoding = "UTF-8"
            config.version = "8"
            virtualHW.version = "8"
            displayName = "\(vm.name)"
            guestOS = "winnetstandard"
            memsize = "768"
            numvcpus = "1"
            ide0:0.present = "TRUE"
            ide0:0.fileName = "disk1.vmdk"
            ethernet0.present = "TRUE"
            ethernet0.virtualDev = "e1000"
            ethernet0.generatedAddress = "00:0c:29:12:34:56"

            """.utf8).write(to: URL(fileURLWithPath: sim.file(datastorePath: vmx)))
        let plan = try FerryExecutable.shell("'\(FerryExecutable.path)' plan --vmx 'esxi://root@\(sim.host):\(sim.port)/\(vm.name)' --target qemu \(flags)")
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("768"), "the memory came from the host's .vmx: \(plan.stdout)")
        #expect((plan.stdout + plan.stderr).contains("\(vm.name)?disk=1"), "the disk came from the host: \(plan.stdout) \(plan.stderr)")
    }
}
