/// The target VM: one model every renderer reads. Built by `Planner.plan`; every setting it
/// chose is also a `Choice` with its reason, printed with the plan.
public struct TargetPlan: Sendable, Equatable, Codable {
    public enum Firmware: String, Sendable, Codable { case bios, uefi }
    public enum DiskBus: String, Sendable, Codable { case ide, sata, virtio, virtioSCSI = "virtio-scsi" }
    public enum NICModel: String, Sendable, Codable { case virtio, e1000, e1000e, rtl8139, pcnet }
    public enum Clock: String, Sendable, Codable { case localtime, utc }

    public var name: String
    /// QEMU machine type: "pc" (i440FX) or "q35".
    public var machine: String
    public var firmware: Firmware
    public var secureBoot: Bool
    /// QEMU `-cpu` model ("qemu64", "qemu32", "host").
    public var cpuModel: String
    public var vcpus: Int
    public var sockets: Int
    public var coresPerSocket: Int
    public var memoryMB: Int
    public var acpi: Bool
    public var clock: Clock
    public var smbiosUUID: String?
    public var disks: [Disk]
    public var nics: [NIC]
    /// CD-ROM drives (empty; images are not carried over).
    public var cdroms: Int
    /// The guest is Windows 2000/XP/2003 (Ganeti `kernel_path=`, `cdrom_disk_type`, …).
    /// "windows2000", "windowsXP2003", "windowsModern", "linux" or "unknown".
    public var family: String
    /// The Windows version ("5.2"), from inspect or else from the .vmx's guestOS.
    public var windowsVersion: String?
    public var legacyWindows: Bool
    public var windows: Bool
    public var choices: [Choice]
    public var warnings: [String]

    public struct Disk: Sendable, Equatable, Codable {
        /// Boot order: 0 boots.
        public var index: Int
        /// The disk to run (a received target or a local image); the .vmx name when not given.
        public var path: String
        /// "raw", "qcow2", "vmdk" …
        public var format: String
        public var bus: DiskBus
        /// Virtual size in bytes, when the disk was read.
        public var size: UInt64?
        /// The .vmx slot it came from ("scsi0:0").
        public var source: String?
        /// True when the path was not given and is only the .vmx's name for it.
        public var missing: Bool
    }

    public struct NIC: Sendable, Equatable, Codable {
        public var index: Int
        public var model: NICModel
        public var mac: String?
        /// The VMware port group or network ("VM Network"); renderers map it to a bridge/link.
        public var network: String?
    }

    /// One decision: the setting, the value, why (the verdict or key it comes from), and
    /// whether it is a guess because a fact was missing.
    public struct Choice: Sendable, Equatable, Codable {
        public var setting: String
        public var value: String
        public var reason: String
        public var guess: Bool
    }
}
