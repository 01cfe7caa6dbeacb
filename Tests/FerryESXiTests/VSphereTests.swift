import FerryDisk
import FerryESXi
import FerryFormats
import FerryTestSupport
import Foundation
import Synchronization
import Testing

/// VMs found by name through the vSphere SOAP API of govmomi's simulator (Login,
/// CreateContainerView, RetrievePropertiesEx), their disks read over /folder and compared with
/// qemu-img, and a running VM refused.
@Suite(.serialized, .timeLimit(.minutes(5))) struct VSphereTests {
    static func machines(_ sim: VCSim, password: String = VCSim.password) throws -> [VSphereVM] {
        let dir = try TemporaryDirectory()
        let scheme = ESXiScheme(settings: try ESXiReadTests.settings(dir, password: password))
        let location = try ESXiLocation(parsingHost: "\(VCSim.user)@\(sim.host):\(sim.port)?fingerprint=\(sim.fingerprint)")
        let session = try scheme.connect(location, password: password)
        defer { session.close() }
        return try ESXiScheme.machines(session, password: password)
    }

    func expectError(_ code: ESXiError.Code, _ containing: String, _ body: () throws -> Void) {
        #expect {
            try body()
        } throws: { error in
            guard let e = error as? ESXiError else { return false }
            return e.code == code && e.description.contains(containing)
        }
    }

    @Test func listsTheSimulatorsVMsWithTheirDisks() throws {
        guard let sim = try VCSim() else { return }
        let vms = try Self.machines(sim)
        #expect(vms.count == 2, "the ESX model has two VMs: \(vms.map(\.name))")
        for vm in vms {
            #expect(vm.powerState == "poweredOff")
            #expect(vm.vmxPath?.hasPrefix("[\(sim.datastore)] \(vm.name)/") == true, "\(String(describing: vm.vmxPath))")
            #expect(vm.disks.count == 1)
            #expect(vm.disks.first?.fileName == "[\(sim.datastore)] \(vm.name)/disk1.vmdk")
            #expect(vm.disks.first?.capacity == 1 << 20)
            #expect(vm.disks.first?.controller?.contains("Controller") == true)
            #expect(vm.snapshots.isEmpty)
            #expect(vm.guestId?.isEmpty == false)
        }
    }

    @Test func wrongPasswordIsInvalidLogin() throws {
        guard let sim = try VCSim() else { return }
        expectError(.authentication, "InvalidLogin") { _ = try Self.machines(sim, password: "wrong") }
    }

    @Test func aVMByNameIsReadThroughItsDisk() throws {
        guard Tools.require("qemu-img", why: "makes the VM's VMDK and reads it as the oracle"), let sim = try VCSim() else { return }
        let vm = try #require(try Self.machines(sim).first)
        let disk = try #require(vm.disks.first)
        let dir = try TemporaryDirectory()
        try ESXiReadTests.rawImage(dir.file("src.raw"), size: 6 << 20, seed: 71)
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicSparse", dir.file("src.raw"), sim.file(datastorePath: disk.fileName))
        let scheme = ESXiScheme(settings: try ESXiReadTests.settings(dir))
        let opened = try scheme.openSource(sim.vmURI(vm.name), policy: SourcePolicy())
        #expect(try ESXiReadTests.readAll(opened.disk) == ESXiReadTests.oracle(sim.file(datastorePath: disk.fileName), dir))
        expectError(.notFound, "no VM called \"nope\"") { _ = try scheme.openSource(sim.vmURI("nope"), policy: SourcePolicy()) }
        expectError(.notFound, "disk=2 is not one") { _ = try scheme.openSource(sim.vmURI(vm.name, "disk=2"), policy: SourcePolicy()) }
    }

    @Test func aRunningVMIsRefusedUnlessForced() throws {
        guard Tools.require("qemu-img", why: "makes the VM's VMDK"), let sim = try VCSim(["-power", "on"]) else { return }
        let vm = try #require(try Self.machines(sim).first)
        #expect(vm.powerState == "poweredOn")
        let disk = try #require(vm.disks.first)
        let dir = try TemporaryDirectory()
        try ESXiReadTests.rawImage(dir.file("src.raw"), size: 3 << 20, seed: 72)
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), sim.file(datastorePath: disk.fileName))
        let before = try sim.stats()["requests"] ?? 0
        var settings = try ESXiReadTests.settings(dir)
        expectError(.inUse, "is running and it has no snapshot") {
            _ = try ESXiScheme(settings: settings).openSource(sim.vmURI(vm.name), policy: SourcePolicy())
        }
        #expect(try sim.stats()["requests"] == before, "no byte of a running VM's disk was read")
        settings.allowRunning = true
        let warnings = WarningLog()
        let opened = try ESXiScheme(settings: settings, warn: warnings.add).openSource(sim.vmURI(vm.name), policy: SourcePolicy())
        #expect(opened.disk.size == 3 << 20)
        #expect(warnings.lines.contains { $0.contains("crash-consistent at best") })
    }
}

extension VSphereTests {
    /// A VM with a snapshot, ESXi-style (the wrapper's `-snapshot`: the disk's backing is a
    /// `-000001` child over the old file). Off, it is read as its current state (the chain);
    /// running, as the snapshot left it (the parent), never the child the VM writes.
    @Test(arguments: [false, true])
    func aSnapshotChainIsReadAsTheRightState(running: Bool) throws {
        guard Tools.require("qemu-img", "qemu-io", why: "make the snapshot chain and read it as the oracle"),
            let sim = try VCSim(["-power", running ? "on" : "off", "-snapshot", "before-migration"])
        else { return }
        let vm = try #require(try Self.machines(sim).first)
        #expect(vm.snapshots == ["before-migration"])
        let disk = try #require(vm.disks.first)
        let parent = try #require(disk.parents.first)
        #expect(disk.fileName.hasSuffix("disk1-000001.vmdk") && parent.hasSuffix("disk1.vmdk"), "\(disk)")
        let dir = try TemporaryDirectory()
        try ESXiReadTests.rawImage(dir.file("src.raw"), size: 4 << 20, seed: 74)
        let base = sim.file(datastorePath: parent), child = sim.file(datastorePath: disk.fileName)
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), base)
        try ESXiReadTests.qemu("create", "-f", "vmdk", "-b", "disk1.vmdk", "-F", "vmdk", child)
        let write = try Tools.run("qemu-io", ["-f", "vmdk", "-c", "write -P 0x5a 1M 512k", child])
        #expect(write.status == 0, "\(write.stderr)")
        let warnings = WarningLog()
        let opened = try ESXiScheme(settings: try ESXiReadTests.settings(dir), warn: warnings.add).openSource(sim.vmURI(vm.name), policy: SourcePolicy())
        let bytes = try ESXiReadTests.readAll(opened.disk)
        #expect(bytes == (try ESXiReadTests.oracle(running ? base : child, dir)))
        #expect(bytes != (try ESXiReadTests.oracle(running ? child : base, dir)), "the two states differ, so the test can tell them apart")
        #expect(warnings.lines.contains { $0.contains("as its current snapshot left it") } == running, "\(warnings.lines)")
    }
}

/// Warnings an `ESXiScheme` printed.
final class WarningLog: Sendable {
    private let store = Mutex<[String]>([])
    var lines: [String] { store.withLock { $0 } }
    var add: @Sendable (String) -> Void { { line in self.store.withLock { $0.append(line) } } }
}
