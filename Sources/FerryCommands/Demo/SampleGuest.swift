import FerryRegistry

/// The demo's guest: Windows Server 2003 SP2 as ESXi 5 ran it, on an LSI Logic SCSI controller
/// (symmpi boot-start) with VMware Tools, and KVM's IDE drivers present but not boot-start and
/// absent from the CriticalDeviceDatabase — the guest of the seed story, which stops with 0x7B
/// on KVM's IDE controller until MergeIDE is applied. Its hives are built by ferry's HiveBuilder.
enum SampleGuest {
    static let controlSet = "ControlSet001"
    static let systemHivePath = "WINDOWS/system32/config/SYSTEM"

    /// Services: name → (Start, Group). Start 0 boot, 1 system, 2 automatic, 3 manual, 4 disabled.
    static let services: [(String, UInt32, String)] = [
        ("symmpi", 0, "SCSI miniport"), ("atapi", 4, "SCSI miniport"), ("intelide", 3, "System Bus Extender"),
        ("pciide", 3, "System Bus Extender"), ("intelppm", 1, "Extended Base"), ("processor", 1, "Extended Base"),
        ("VMTools", 2, ""),
    ]

    static func systemHive() -> [UInt8] {
        var b = HiveBuilder(rootName: "$$$PROTO.HIV", minorVersion: 3)
        let ccs = controlSet
        b.set("Select", "Current", .dword(1))
        b.set("Select", "Default", .dword(1))
        b.set("Select", "Failed", .dword(0))
        b.set("Select", "LastKnownGood", .dword(2))
        b.set(ccs + "\\Control\\Session Manager\\Environment", "PROCESSOR_ARCHITECTURE", .string("x86"))
        b.set(ccs + "\\Control\\ComputerName\\ComputerName", "ComputerName", .string("FILESRV03"))
        b.set(ccs + "\\Control\\TimeZoneInformation", "Bias", .dword(0xFFFF_FFC4))
        b.set(ccs + "\\Control\\CrashControl", "AutoReboot", .dword(1))
        b.set(ccs + "\\Enum\\Root\\ACPI_HAL\\0000", "HardwareID", .multiString(["acpiapic_up"]))
        for (name, start, group) in services {
            let key = ccs + "\\Services\\" + name
            b.set(key, "Start", .dword(start))
            b.set(key, "Type", .dword(name == "VMTools" ? 16 : 1))
            b.set(key, "ErrorControl", .dword(1))
            if !group.isEmpty { b.set(key, "Group", .string(group)) }
            let image = name == "VMTools" ? "\"C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe\"" : "system32\\DRIVERS\\\(name).sys"
            b.set(key, "ImagePath", .expandString(image))
        }
        let cdb = ccs + "\\Control\\CriticalDeviceDatabase\\pci#ven_1000&dev_0030"
        b.set(cdb, "Service", .string("symmpi"))
        b.set(cdb, "ClassGUID", .string("{4D36E97B-E325-11CE-BFC1-08002BE10318}"))
        // LastKnownGood: the same drivers, as Windows keeps a second set.
        b.set("ControlSet002\\Services\\symmpi", "Start", .dword(0))
        return b.build()
    }

    static func softwareHive() -> [UInt8] {
        var b = HiveBuilder(rootName: "$$$PROTO.HIV", minorVersion: 3)
        let cv = "Microsoft\\Windows NT\\CurrentVersion"
        b.set(cv, "ProductName", .string("Microsoft Windows Server 2003"))
        b.set(cv, "CurrentVersion", .string("5.2"))
        b.set(cv, "CurrentBuildNumber", .string("3790"))
        b.set(cv, "CSDVersion", .string("Service Pack 2"))
        b.set(cv, "SystemRoot", .string("C:\\WINDOWS"))
        b.set("VMware, Inc.\\VMware Tools", "InstallPath", .string("C:\\Program Files\\VMware\\VMware Tools\\"))
        return b.build()
    }

    /// The volume's files: the hives, the drivers and kernel (stand-ins: an "MZ" header and
    /// filler), the loader's boot.ini, and the data a file server holds (text: compressible).
    static func files() -> [String: [UInt8]] {
        func binary(_ name: String, _ size: Int) -> [UInt8] { Array("MZ \(name)".utf8) + [UInt8](repeating: 0xCC, count: size) }
        var files: [String: [UInt8]] = [
            systemHivePath: systemHive(),
            "WINDOWS/system32/config/SOFTWARE": softwareHive(),
            "WINDOWS/system32/ntoskrnl.exe": binary("ntoskrnl.exe", 40_000),
            "WINDOWS/system32/hal.dll": binary("hal.dll", 12_000),
            "ntldr": binary("ntldr", 9_000),
            "boot.ini": Array("[boot loader]\r\ntimeout=30\r\ndefault=multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS\r\n".utf8),
            "Shares/reports/2012.txt": SampleDisk.pseudoRandomText(count: 6 << 20, seed: 1),
            "Shares/reports/2013.txt": SampleDisk.pseudoRandomText(count: 10 << 20, seed: 2),
            "WINDOWS/system32/LogFiles/W3SVC1/ex130101.log": SampleDisk.pseudoRandomText(count: 2 << 20, seed: 3),
        ]
        for (name, _, _) in services where name != "VMTools" {
            files["WINDOWS/system32/drivers/\(name).sys"] = binary(name + ".sys", 6_000)
        }
        files["WINDOWS/system32/drivers/pciidex.sys"] = binary("pciidex.sys", 6_000)
        return files
    }
}
