import FerryBinary
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

extension VSphereTests {
    /// What the simulator cannot show: an encrypted disk (its backing has a keyId), a vTPM, a
    /// snapshot chain, an independent disk, read from the XML a vSphere 7 host sends.
    @Test func encryptionVTPMAndChainsAreReadFromTheDeviceList() throws {
        let xml = """
            <objects xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><obj type="VirtualMachine">vm-7</obj>
            <propSet><name>name</name><val xsi:type="xsd:string">dc01</val></propSet>
            <propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOff</val></propSet>
            <propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
            <VirtualDevice xsi:type="VirtualLsiLogicSASController"><key>1000</key></VirtualDevice>
            <VirtualDevice xsi:type="VirtualTPM"><key>11000</key></VirtualDevice>
            <VirtualDevice xsi:type="VirtualDisk"><key>2000</key><deviceInfo><label>Hard disk 1</label></deviceInfo>
            <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] dc01/dc01-000002.vmdk</fileName><diskMode>persistent</diskMode>
            <parent xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] dc01/dc01-000001.vmdk</fileName>
            <parent xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] dc01/dc01.vmdk</fileName></parent></parent>
            <keyId><keyId>8f2c</keyId><providerId><id>kms1</id></providerId></keyId></backing>
            <controllerKey>1000</controllerKey><capacityInKB>41943040</capacityInKB></VirtualDevice>
            <VirtualDevice xsi:type="VirtualDisk"><key>2001</key><deviceInfo><label>Hard disk 2</label></deviceInfo>
            <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] dc01/logs.vmdk</fileName><diskMode>independent_persistent</diskMode></backing>
            <controllerKey>1000</controllerKey><capacityInBytes>1073741824</capacityInBytes></VirtualDevice>
            </val></propSet></objects>
            """
        let vm = try VSphereVM(try XMLTree.parse(Array(xml.utf8)), subject: "test")
        #expect(vm.name == "dc01" && vm.isPoweredOff && vm.hasVirtualTPM)
        #expect(vm.disks.count == 2)
        #expect(vm.disks[0].encrypted && !vm.disks[1].encrypted)
        #expect(vm.disks[0].parents == ["[ds1] dc01/dc01-000001.vmdk", "[ds1] dc01/dc01.vmdk"])
        #expect(vm.disks[0].capacity == 40 << 30 && vm.disks[1].capacity == 1 << 30)
        #expect(vm.disks[0].controller == "VirtualLsiLogicSASController")
        #expect(!vm.disks[0].isIndependent && vm.disks[1].isIndependent)
        #expect(vm.provisionedBytes == 41 << 30)

        // Copying the encrypted disk is refused before a byte is read; the other disk is not.
        var location = try ESXiLocation(parsing: "esxi://root@esx.example/dc01")
        location.disk = 1
        let first = location
        let refused = #expect(throws: ESXiError.self) {
            try ESXiScheme.diskToRead(vm, first, allowRunning: false, warn: { _ in })
        }
        #expect(refused?.code == .encrypted && refused?.detail.contains("Decrypt the VM") == true, "\(String(describing: refused))")
        location.disk = 2
        #expect(try ESXiScheme.diskToRead(vm, location, allowRunning: false, warn: { _ in }) == "[ds1] dc01/logs.vmdk")
    }
}

/// Warnings an `ESXiScheme` printed.
final class WarningLog: Sendable {
    private let store = Mutex<[String]>([])
    var lines: [String] { store.withLock { $0 } }
    var add: @Sendable (String) -> Void { { line in self.store.withLock { $0.append(line) } } }
}
