import FerryTestSupport
import Foundation
import Testing

/// `ferry plan` and `ferry explain` as a user runs them: what they print, and the exit codes
/// of the one table (FerryExit) when input is missing or bad.
@Suite struct PlanCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FerryTargetTests/Fixtures")

    static func vmx(_ name: String) -> String { fixtures.appendingPathComponent(name + ".vmx").path }

    @Test func planFromTheVMXAloneMarksGuesses() throws {
        let result = try FerryExecutable.run(["plan", "--vmx", Self.vmx("esxi5-win2003"), "--target", "ganeti"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("ferry plan: legacy-erp on ganeti\n"))
        #expect(result.stdout.contains("  disk-bus     ide (guess)\n"))
        #expect(result.stdout.contains("  guest        Windows XP/2003 (guess)\n"))
        #expect(result.stdout.contains("warning: disk scsi0:0 (legacy-erp.vmdk) was not given"))
        #expect(result.stdout.contains("gnt-instance add -t plain"))
        #expect(result.stdout.contains(".vmx keys not used:"))
    }

    @Test func planInspectsTheGivenDisk() throws {
        let dir = try TemporaryDirectory("ferry-plan")
        let disk = dir.file("legacy-erp.raw")
        // An empty 1 MiB disk: inspect reads it (no partition table) and the plan says what it could not learn.
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: disk))
        let result = try FerryExecutable.run(["plan", "--vmx", Self.vmx("esxi5-win2003"), disk, "--target", "libvirt", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let plan = json?["plan"] as? [String: Any]
        let disks = plan?["disks"] as? [[String: Any]]
        #expect(disks?.first?["path"] as? String == disk && disks?.first?["size"] as? Int == 1 << 20)
        #expect((json?["configuration"] as? String)?.contains("<source file='\(disk)'/>") == true)
        #expect((plan?["choices"] as? [[String: Any]])?.contains { $0["setting"] as? String == "nic-model" } == true)
    }

    @Test func missingVMXWithADiskStillPlans() throws {
        let dir = try TemporaryDirectory("ferry-plan")
        let disk = dir.file("d.raw")
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: disk))
        let result = try FerryExecutable.run(["plan", "--vmx", dir.file("absent.vmx"), disk, "--target", "qemu"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("warning: the .vmx could not be used:") && result.stdout.contains("no such file"))
        #expect(result.stdout.contains("qemu-system-x86_64"))
    }

    @Test func nothingToPlanFromExits66() throws {
        let dir = try TemporaryDirectory("ferry-plan")
        let result = try FerryExecutable.run(["plan", "--vmx", dir.file("absent.vmx"), "--target", "qemu"])
        #expect(result.status == 66, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.hasPrefix("ferry: error: ") && result.stderr.contains("absent.vmx"))
        #expect(result.stdout.isEmpty)
    }

    @Test func binaryVMXExits65() throws {
        let dir = try TemporaryDirectory("ferry-plan")
        let path = dir.file("vm.vmx")
        try Data([0x4B, 0x44, 0x4D, 0x56, 0, 0, 1, 0]).write(to: URL(fileURLWithPath: path))
        let result = try FerryExecutable.run(["plan", "--vmx", path, "--target", "proxmox"])
        #expect(result.status == 65, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr == "ferry: error: .vmx: byte 4 is NUL: this is a binary file, not a .vmx text file\n")
    }

    @Test func explainKnownAndUnknownCodes() throws {
        let known = try FerryExecutable.run(["explain", "0x0000007B"])
        #expect(known.status == 0)
        #expect(known.stdout.hasPrefix("STOP 0x0000007B INACCESSIBLE_BOOT_DEVICE\n") && known.stdout.contains("verdicts boot-ide"))
        let words = try FerryExecutable.run(["explain", "NTLDR", "is", "missing"])
        #expect(words.status == 0 && words.stdout.hasPrefix("\"NTLDR is missing\""))
        let unknown = try FerryExecutable.run(["explain", "0xDEAD"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("no boot error \"0xDEAD\" is known"))
        let list = try FerryExecutable.run(["explain", "--list"])
        #expect(list.status == 0 && list.stdout.split(separator: "\n").count == 12)
    }
}

extension PlanCommandTests {
    /// A qcow2 overlay on a raw base (made by qemu-img, the image oracle): the plan says it is a chain.
    @Test func backingChainIsAWarning() throws {
        guard Tools.require("qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-plan")
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: dir.file("base.raw")))
        let made = try Tools.run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", "base.raw", dir.file("top.qcow2")])
        try #require(made.status == 0, "qemu-img create: \(made.stderr)")
        let result = try FerryExecutable.run(["plan", dir.file("top.qcow2"), "--target", "qemu"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("is a chain of 2 images"), "\(result.stdout)")
        #expect(result.stdout.contains("format=qcow2,if=none,id=disk0"))
    }
}

extension PlanCommandTests {
    /// A disk ferry cannot open (a damaged qcow2 header): the .vmx still gives a plan, the disk
    /// is named in a warning and every choice that needed the guest is a guess.
    @Test func unreadableDiskStillPlansFromTheVMX() throws {
        let dir = try TemporaryDirectory("ferry-plan")
        let disk = dir.file("xp-scada.qcow2")
        try Data([0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 99] + [UInt8](repeating: 0xEE, count: 504)).write(to: URL(fileURLWithPath: disk))
        let result = try FerryExecutable.run(["plan", "--vmx", Self.vmx("esxi6-winxp"), disk, "--target", "proxmox"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("warning: \(disk) could not be opened:"), "\(result.stdout)")
        #expect(result.stdout.contains("  disk-bus     ide (guess)\n"))
        #expect(result.stdout.contains("qm create 100 --name xp-scada --ostype wxp"))
    }
}
