@testable import FerryTarget
import FerryTestSupport
import Foundation
import Testing

/// QEMU itself judges every fixture's command line: it builds the machine from the arguments
/// (every `-device`, bus, unit, pflash and netdev) before it reads its monitor, so started
/// paused (`-S`) with `quit` on the monitor it exits 0 only when it accepted them all. The disks
/// are scratch images in the plan's formats (qemu-img). The boots themselves are in
/// FerryCommandsTests' PlanBootTests; this covers the buses those do not boot (SATA/AHCI,
/// virtio-scsi, secure-boot pflash, several disks, CD-ROMs, three NICs).
@Suite struct QEMUOracleTests {
    @Test(arguments: Fixture.all)
    func qemuAcceptsTheCommandLine(_ name: String) throws {
        guard Tools.require("qemu-system-x86_64", "qemu-img", why: "QEMU judges its command line") else { return }
        let dir = try TemporaryDirectory("ferry-qemu-oracle")
        var plan = try RendererGoldenTests.plan(name)
        for i in plan.disks.indices {
            let path = dir.file("disk\(i).\(plan.disks[i].format)")
            let made = try Tools.run("qemu-img", ["create", "-q", "-f", plan.disks[i].format, path, "16M"])
            try #require(made.status == 0, "qemu-img create: \(made.stderr)")
            plan.disks[i].path = path
        }
        var options = RenderOptions()
        options.accelerator = "tcg"
        options.ovmfVarsCopy = dir.file("VARS.fd")
        if plan.secureBoot {
            guard FileManager.default.fileExists(atPath: options.ovmfSecureCode) else {
                Skip.because("\(options.ovmfSecureCode) is missing (apt-get install ovmf)")
                return
            }
            try FileManager.default.copyItem(atPath: options.ovmfSecureVars, toPath: dir.file("VARS.fd"))
        }
        options.qemuExtra = ["-S", "-display", "none", "-serial", "none", "-monitor", "stdio"]
        let arguments = QEMURenderer.arguments(plan, options)
        let result = try Tools.run(arguments[0], Array(arguments.dropFirst()), stdin: Data("quit\n".utf8))
        #expect(result.status == 0, "\(name): qemu refused \(arguments.joined(separator: " ")):\n\(result.stderr)")
    }

    /// Not a rubber stamp: a device QEMU does not have is refused.
    @Test func qemuRefusesAnUnknownDevice() throws {
        guard Tools.require("qemu-system-x86_64", why: "QEMU judges its command line") else { return }
        var options = RenderOptions()
        options.accelerator = "tcg"
        options.qemuExtra = ["-S", "-display", "none", "-serial", "none", "-monitor", "stdio", "-device", "vmware-lsilogic-53c1030"]
        let plan = Planner.plan(machine: nil, guest: GuestFacts(os: .linux), disks: [])
        let arguments = QEMURenderer.arguments(plan, options)
        #expect(try Tools.run(arguments[0], Array(arguments.dropFirst()), stdin: Data("quit\n".utf8)).status != 0)
    }
}
