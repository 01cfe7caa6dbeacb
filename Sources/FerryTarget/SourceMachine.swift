/// The VM a .vmx describes, as far as a target hypervisor cares (windows-and-targets §3.1).
/// Built by `SourceMachine(vmx:)`; everything odd is a warning, every key not read is kept in
/// `otherKeys` so nothing in the file goes unmentioned.
public struct SourceMachine: Sendable, Equatable, Codable {
    public enum Firmware: String, Sendable, Codable { case bios, efi }

    public var name: String?
    /// `guestOS` as written ("winnetenterprise", "windows9srv-64", "ubuntu-64"…).
    public var guestOS: String?
    public var virtualHardwareVersion: Int?
    public var firmware: Firmware
    public var secureBoot: Bool
    public var vcpus: Int
    public var coresPerSocket: Int
    public var memoryMB: Int
    /// `uuid.bios` as an SMBIOS UUID ("564d1234-…"), lowercase.
    public var biosUUID: String?
    public var disks: [SourceDisk]
    public var cdroms: [SourceCDROM]
    public var nics: [SourceNIC]
    /// `rtc.diffFromUTC` (seconds), `tools.syncTime` and friends, as written.
    public var time: [String: String]
    public var otherKeys: [VMX.Entry]
    public var warnings: [String]
}

/// A disk attached to a controller of the VM.
public struct SourceDisk: Sendable, Equatable, Codable {
    public enum Bus: String, Sendable, Codable, CaseIterable { case scsi, ide, sata, nvme }

    public var bus: Bus
    /// Controller and unit: `scsi0:1` is controller 0, unit 1.
    public var controller: Int
    public var unit: Int
    /// `scsiN.virtualDev` (lsilogic, lsisas1068, pvscsi, buslogic); nil for ide/sata/nvme or unset.
    public var controllerType: String?
    /// The VMDK descriptor named by `fileName`.
    public var fileName: String
    /// persistent, independent-persistent, independent-nonpersistent, nonpersistent, undoable.
    public var mode: String
    /// `fileName` is a snapshot's delta descriptor (`name-000001.vmdk`): the chain must be
    /// consolidated (or copied through its parents) before the disk is whole.
    public var snapshot: Bool
    public var label: String { "\(bus.rawValue)\(controller):\(unit)" }
}

public struct SourceCDROM: Sendable, Equatable, Codable {
    public var bus: SourceDisk.Bus
    public var controller: Int
    public var unit: Int
    /// cdrom-image, atapi-cdrom, cdrom-raw.
    public var deviceType: String
    public var fileName: String?
    public var label: String { "\(bus.rawValue)\(controller):\(unit)" }
}

public struct SourceNIC: Sendable, Equatable, Codable {
    public var index: Int
    /// e1000, e1000e, vmxnet3, vmxnet, vlance; nil when unset (ESXi then presents vlance/flexible).
    public var virtualDev: String?
    /// Lowercase `aa:bb:cc:dd:ee:ff`.
    public var mac: String?
    /// Where the MAC came from: "address" or "generatedAddress".
    public var macSource: String?
    public var addressType: String?
    public var networkName: String?
    public var connectionType: String?
}
