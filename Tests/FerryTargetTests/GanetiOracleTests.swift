@testable import FerryTarget
import FerryTestSupport
import Foundation
import Testing

/// Ganeti's own client code judges the gnt-instance lines (Oracles/ganeti-check.py): the real
/// option parser, the command function up to the opcode it would submit, the opcode's type
/// checks, and hv_kvm's parameter syntax and validation (machine_version against `kvm -M ?`).
/// No cluster is initialised: `gnt-cluster init` needs a resolvable master name, SSH keys and
/// a running daemon set, which a test machine does not give.
@Suite struct GanetiOracleTests {
    static let script = Fixture.directory.deletingLastPathComponent().appendingPathComponent("Oracles/ganeti-check.py").path

    func check(_ text: String) throws -> ToolResult {
        try Tools.run("/usr/bin/python3", [Self.script], stdin: Data(text.utf8))
    }

    @Test(arguments: Fixture.all)
    func ganetiAcceptsAddAndModify(_ name: String) throws {
        guard Tools.require("gnt-instance", "kvm", why: "Ganeti's own code judges the gnt-instance lines") else { return }
        let plan = try RendererGoldenTests.plan(name)
        var options = RenderOptions(bridge: "br-vm")
        options.ganetiNode = "node1.example.org"
        let result = try check(GanetiRenderer.render(plan, options))
        #expect(result.status == 0, "\(name): \(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("ok add \(plan.name): \(plan.disks.count) disk(s), \(plan.nics.count) nic(s)"), "\(result.stdout)")
        #expect(result.stdout.contains("ok modify \(plan.name)"))
        if let uuid = plan.smbiosUUID {
            // The comma escaped for -H reaches QEMU as one -smbios argument.
            #expect(result.stdout.contains("kvm_extra argv: ['-smbios', 'type=1,uuid=\(uuid)'"), "\(result.stdout)")
        }
    }

    /// The oracle refuses what Ganeti refuses: a disk_type it does not have, a size without a unit it knows.
    @Test func ganetiRefusesWhatItDoesNotKnow() throws {
        guard Tools.require("gnt-instance", "kvm", why: "Ganeti's own code judges the gnt-instance lines") else { return }
        let good = GanetiRenderer.render(try RendererGoldenTests.plan("esxi7-win2008"))
        let lines = good.split(separator: "\n").filter { $0.hasPrefix("gnt-instance add") }.map(String.init)
        try #require(lines.count == 1)
        #expect(try check(lines[0].replacing("disk_type=scsi-hd", with: "disk_type=sata")).status != 0)
        #expect(try check(lines[0].replacing("machine_version=pc", with: "machine_version=pc-i440fx-0.1-nonexistent")).status != 0)
        #expect(try check(lines[0].replacing("size=9216M", with: "size=UNKNOWN")).status != 0)
        #expect(try check(lines[0].replacing("nic_type=e1000", with: "nic_type=vmxnet3")).status != 0)
        #expect(try check(lines[0]).status == 0)
    }
}
