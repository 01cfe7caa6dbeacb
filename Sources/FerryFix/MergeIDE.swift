/// The content of Microsoft's MergeIDE registry patch (KB314082, "Stop 0x0000007B after you
/// move the Windows XP system disk to another computer"), as data: CriticalDeviceDatabase
/// entries for the inbox IDE controllers and the IDE channels, and the three IDE services
/// made boot-start. `windows-and-targets.md` §2.2 lists it; the public copies compared
/// there (kvm-mergeide's mergeide.reg, a 2010 CurrentControlSet copy) agree.
///
/// Offline, the keys go under `ControlSet00N` (every set `Select` names), not
/// `CurrentControlSet`, which exists only on a running system.
public enum MergeIDE {
    /// hdc: IDE ATA/ATAPI controllers.
    public static let hdcClass = "{4D36E96A-E325-11CE-BFC1-08002BE10318}"
    /// DiskDrive.
    public static let diskClass = "{4D36E967-E325-11CE-BFC1-08002BE10318}"

    /// `Control\CriticalDeviceDatabase\<key>` → (Service, ClassGUID), in the patch's order.
    public static let criticalDevices: [(key: String, service: String, classGUID: String)] = {
        var out: [(String, String, String)] = [
            ("primary_ide_channel", "atapi", hdcClass),
            ("secondary_ide_channel", "atapi", hdcClass),
            ("*pnp0600", "atapi", hdcClass),
            ("*azt0502", "atapi", hdcClass),
            ("gendisk", "disk", diskClass),
            ("pci#cc_0101", "pciide", hdcClass),
        ]
        // Third-party PCI IDE controllers driven by the generic pciide.
        for id in [
            "ven_0e11&dev_ae33", "ven_1039&dev_0601", "ven_1039&dev_5513", "ven_1042&dev_1000", "ven_105a&dev_4d33",
            "ven_1095&dev_0640", "ven_1095&dev_0646", "ven_1095&dev_0646&REV_05", "ven_1095&dev_0646&REV_07",
            "ven_1095&dev_0648", "ven_1095&dev_0649", "ven_1097&dev_0038", "ven_10ad&dev_0001", "ven_10ad&dev_0150",
            "ven_10b9&dev_5215", "ven_10b9&dev_5219", "ven_10b9&dev_5229", "ven_1106&dev_0571",
        ] {
            out.append(("pci#" + id, "pciide", hdcClass))
        }
        // Intel's: 82092AA, PIIX (82371FB), ICH, ICH0, PIIX3 (QEMU's `pc` IDE), PIIX4 (VMware's IDE), 440MX.
        for id in ["ven_8086&dev_1222", "ven_8086&dev_1230", "ven_8086&dev_2411", "ven_8086&dev_2421", "ven_8086&dev_7010", "ven_8086&dev_7111", "ven_8086&dev_7199"] {
            out.append(("pci#" + id, "intelide", hdcClass))
        }
        return out
    }()

    /// One `Services\<name>` key of the patch.
    public struct Service: Sendable {
        public var name: String
        public var group: String
        public var tag: UInt32
        public var imagePath: String
        public var displayName: String?
        public var file: String
    }

    /// Type 1 (kernel driver), Start 0 (boot), ErrorControl 1 (normal) for all three.
    public static let services: [Service] = [
        Service(name: "atapi", group: "SCSI miniport", tag: 0x19, imagePath: "System32\\DRIVERS\\atapi.sys",
            displayName: "Standard IDE/ESDI Hard Disk Controller", file: "atapi.sys"),
        Service(name: "IntelIde", group: "System Bus Extender", tag: 4, imagePath: "System32\\DRIVERS\\intelide.sys", displayName: nil, file: "intelide.sys"),
        Service(name: "PCIIde", group: "System Bus Extender", tag: 3, imagePath: "System32\\DRIVERS\\pciide.sys", displayName: nil, file: "pciide.sys"),
    ]

    /// The files the patch needs in `System32\drivers`: the three services' and the PCI IDE
    /// bus library `pciidex.sys` that intelide and pciide import. A boot-start service
    /// without its file stops with 0x7B as surely as a missing one.
    public static let requiredFiles = ["atapi.sys", "intelide.sys", "pciide.sys", "pciidex.sys"]

    /// The edits of the patch for one control set, in the patch's order.
    public static func edits(controlSet: String) -> [RegistryEdit] {
        var out: [RegistryEdit] = []
        let cdb = [controlSet, "Control", "CriticalDeviceDatabase"]
        for device in criticalDevices {
            let key = cdb + [device.key]
            out.append(RegistryEdit(.system, key, .createKey))
            out.append(.string(.system, key, "ClassGUID", device.classGUID))
            out.append(.string(.system, key, "Service", device.service))
        }
        for service in services {
            let key = [controlSet, "Services", service.name]
            out.append(RegistryEdit(.system, key, .createKey))
            out.append(.dword(.system, key, "ErrorControl", 1))
            out.append(.string(.system, key, "Group", service.group))
            out.append(.dword(.system, key, "Start", 0))
            out.append(.dword(.system, key, "Tag", service.tag))
            out.append(.dword(.system, key, "Type", 1))
            out.append(.expandString(.system, key, "ImagePath", service.imagePath))
            if let displayName = service.displayName { out.append(.string(.system, key, "DisplayName", displayName)) }
        }
        return out
    }
}
