import FerryTarget
import FerryTestSupport
import Foundation
import Testing

/// The QEMU renderer's command line, booted for real (TCG) with the repo's boot disk
/// (Tests/Fixtures/make-boot-disk.sh): once with a Linux guest's plan (virtio disk and NIC),
/// once with a Windows 2003 guest's plan (i440FX, IDE, e1000, qemu64, local-time RTC, SMBIOS
/// UUID). The disk boots Linux either way; what is tested is that every device, bus, slot and
/// boot index the renderer writes is one QEMU accepts and boots from.
@Suite(.serialized) struct PlanBootTests {
    static let linuxVMX = """
        displayName = "boot-linux"
        guestOS = "ubuntu-64"
        memsize = "256"
        numvcpus = "1"
        ethernet0.present = "TRUE"
        ethernet0.virtualDev = "vmxnet3"
        ethernet0.addressType = "generated"
        ethernet0.generatedAddress = "00:0c:29:00:00:01"
        uuid.bios = "56 4d 00 00 00 00 00 00-00 00 00 00 00 00 00 01"
        """
    static let windowsVMX = """
        displayName = "boot-w2k3"
        guestOS = "winnetenterprise-64"
        memsize = "256"
        numvcpus = "2"
        scsi0.present = "TRUE"
        scsi0.virtualDev = "lsilogic"
        scsi0:0.present = "TRUE"
        scsi0:0.fileName = "boot.vmdk"
        ide1:0.present = "TRUE"
        ide1:0.deviceType = "cdrom-raw"
        ethernet0.present = "TRUE"
        ethernet0.virtualDev = "e1000"
        ethernet0.addressType = "static"
        ethernet0.address = "00:50:56:00:00:02"
        uuid.bios = "56 4d 00 00 00 00 00 00-00 00 00 00 00 00 00 02"
        """

    /// The GPT/ESP disk of Tests/Fixtures/make-uefi-boot-disk.sh, built into `dir`.
    func uefiDisk(_ dir: TemporaryDirectory) throws -> String? {
        let script = BootDiskFixture.packageRoot.appendingPathComponent("Tests/Fixtures/make-uefi-boot-disk.sh").path
        let path = dir.file("uefi.raw")
        let result = try Tools.run("/bin/bash", [script, path])
        switch result.status {
        case 0: return path
        case 77:
            Skip.because("UEFI boot disk unavailable: \(result.stderr)")
            return nil
        default:
            Issue.record("make-uefi-boot-disk.sh exited \(result.status): \(result.stderr)")
            return nil
        }
    }

    func boot(_ vmx: String, _ facts: GuestFacts, uefi: Bool = false, expect check: (TargetPlan, [String]) -> Void) async throws {
        guard QEMUBoot.available else { return }
        let dir = try TemporaryDirectory("ferry-plan-boot")
        let disk: String
        if uefi {
            guard Tools.require("mcopy", why: "the UEFI boot disk is built with mtools"), let built = try uefiDisk(dir) else { return }
            guard FileManager.default.fileExists(atPath: RenderOptions().ovmf) else {
                Skip.because("\(RenderOptions().ovmf) is missing (apt-get install ovmf)")
                return
            }
            try await boot(vmx, facts, disk: built, dir: dir, check)
            return
        }
        switch await BootDiskFixture.shared.disk() {
        case .built(let path): disk = path
        case .skip(let reason):
            Skip.because("boot disk unavailable: \(reason)")
            return
        case .failed(let reason):
            Issue.record("boot disk build failed: \(reason)")
            return
        }
        try await boot(vmx, facts, disk: disk, dir: dir, check)
    }

    func boot(_ vmx: String, _ facts: GuestFacts, disk: String, dir: TemporaryDirectory, _ check: (TargetPlan, [String]) -> Void) async throws {
        let machine = try SourceMachine(vmxBytes: Array(vmx.utf8))
        let plan = Planner.plan(machine: machine, guest: facts, disks: [.init(path: disk, format: "raw", size: 64 << 20)])
        let serial = dir.file("serial.log")
        var options = RenderOptions()
        options.accelerator = "tcg"
        options.qemuExtra = ["-nographic", "-no-reboot", "-display", "none", "-monitor", "none", "-serial", "file:\(serial)", "-snapshot"]
        let arguments = QEMURenderer.arguments(plan, options)
        check(plan, arguments)
        guard let qemu = Tools.find(arguments[0]) else {
            Issue.record("no \(arguments[0])")
            return
        }
        let process = try BoundedProcess(qemu, Array(arguments.dropFirst()), stderr: dir.file("qemu.err"))
        // A hang guard only: OVMF's shell waits 5 s before startup.nsh, and TCG is slow under load.
        let status = process.wait(seconds: QEMUBoot.timeout * 2)
        let output = (try? String(contentsOfFile: serial, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: dir.file("qemu.err"), encoding: .utf8)) ?? ""
        #expect(output.contains(QEMUBoot.marker), "no \(QEMUBoot.marker) booting \(arguments.joined(separator: " "))\nqemu: \(errors)\nserial: \(output.suffix(800))")
        #expect(status == 0, "qemu did not end by the guest's power-off (\(status.map(String.init) ?? "killed")): \(errors)")
    }

    @Test func linuxPlanBoots() async throws {
        try await boot(Self.linuxVMX, GuestFacts(os: .linux, partitionTable: "mbr")) { plan, arguments in
            #expect(plan.disks.map(\.bus) == [.virtio] && plan.nics.map(\.model) == [.virtio])
            #expect(arguments.contains("virtio-blk-pci,drive=disk0,bootindex=0"))
            #expect(arguments.contains("virtio-net-pci,netdev=net0,mac=00:0c:29:00:00:01"))
        }
    }

    @Test func windows2003PlanBoots() async throws {
        let facts = GuestFacts(
            os: .windows, windowsVersion: "5.2", architecture: "x64", hal: "acpiapic_up", halMultiprocessor: false, halACPI: true,
            rtcLocalTime: true, partitionTable: "mbr", verdicts: ["boot-ide": true, "boot-virtio-blk": false])
        try await boot(Self.windowsVMX, facts) { plan, arguments in
            #expect(plan.machine == "pc" && plan.cpuModel == "qemu64" && plan.vcpus == 1 && plan.clock == .localtime)
            #expect(arguments.contains("ide-hd,drive=disk0,bus=ide.0,unit=0,bootindex=0"))
            #expect(arguments.contains("ide-cd,drive=cd0,bus=ide.0,unit=1"))
            #expect(arguments.contains("e1000,netdev=net0,mac=00:50:56:00:00:02"))
            #expect(arguments.contains("base=localtime") && arguments.contains("type=1,uuid=564d0000-0000-0000-0000-000000000002"))
        }
    }

    /// An EFI guest's plan: `-bios OVMF.fd` boots the GPT disk's ESP (windows-and-targets §5.3: firmware as in the .vmx).
    @Test func uefiLinuxPlanBoots() async throws {
        let vmx = Self.linuxVMX + "\nfirmware = \"efi\"\n"
        try await boot(vmx, GuestFacts(os: .linux, partitionTable: "gpt", efiSystemPartition: true), uefi: true) { plan, arguments in
            #expect(plan.firmware == .uefi && !plan.secureBoot && plan.machine == "pc")
            #expect(arguments.contains("-bios") && arguments.contains("/usr/share/ovmf/OVMF.fd"))
        }
    }
}
