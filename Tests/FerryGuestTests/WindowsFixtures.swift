import FerryRegistry
import FerryTestSupport
import Foundation

/// Windows guests modelled on 2003/XP/2008 layouts: hives written by HiveBuilder, driver files,
/// hiberfil.sys, put on an NTFS volume and disk by Tests/Fixtures/make-guest-fixtures.sh.
struct WindowsProfile {
    var product = "Microsoft Windows Server 2003"
    var version = "5.2"
    var build = "3790"
    var servicePack: String? = "Service Pack 2"
    var architecture = "x86"
    var hal = "acpiapic_up"
    var controlSet = 1
    var services: [String: UInt32] = [:]
    /// CDB key name → service.
    var criticalDevices: [String: String] = [:]
    /// Driver files under system32/drivers.
    var driverFiles: [String] = []
    var realTimeIsUniversal = false
    var vmwareTools = false
    /// First bytes of hiberfil.sys, nil for none.
    var hiberfil: String?
    var driverDatabase = false
    var dirtySystemHive = false
    /// Replaces the SYSTEM hive's root cell offset with one outside the bins (a damaged hive).
    var brokenSystemHive = false
    /// Select\Current and Select\Default when they differ from `controlSet` (setup media hold 0).
    var selectCurrent: UInt32?
    var selectDefault: UInt32?
    /// Cuts the SYSTEM hive after this many bytes (a truncated copy).
    var truncateSystemHive: Int?
    /// SOFTWARE without CurrentVersion (version must come from ProductName).
    var currentVersionMissing = false
    /// A CurrentBuild value as XP and later keep it ("1.511.1 () (Obsolete data - do not use)").
    var currentBuild: String?

    /// VMware ESXi 2003 on LSI Logic SCSI: symmpi boot-start, IDE drivers not boot-start, no IDE CDB.
    static var vmwareSCSI2003: WindowsProfile {
        var p = WindowsProfile()
        p.services = ["symmpi": 0, "atapi": 4, "intelide": 3, "pciide": 3, "intelppm": 1, "processor": 1, "VMTools": 2]
        p.criticalDevices = ["pci#ven_1000&dev_0030": "symmpi"]
        p.driverFiles = ["symmpi.sys", "atapi.sys", "intelide.sys", "pciide.sys", "pciidex.sys", "intelppm.sys", "processor.sys"]
        p.vmwareTools = true
        return p
    }

    /// The same guest after MergeIDE (KB314082), with intelppm disabled.
    static var mergeIDE2003: WindowsProfile {
        var p = vmwareSCSI2003
        p.services.merge(["atapi": 0, "intelide": 0, "pciide": 0, "intelppm": 4]) { $1 }
        p.services["VMTools"] = nil
        p.vmwareTools = false
        p.criticalDevices.merge([
            "primary_ide_channel": "atapi", "secondary_ide_channel": "atapi", "pci#cc_0101": "pciide",
            "pci#ven_8086&dev_7010": "intelide", "pci#ven_8086&dev_7111": "intelide",
        ]) { $1 }
        p.hal = "acpiapic_mp"
        return p
    }

    /// XP SP3 with viostor installed (CDB for 1af4:1001 with a subsys suffix), MP HAL.
    static var virtioXP: WindowsProfile {
        var p = WindowsProfile()
        p.product = "Microsoft Windows XP"
        p.version = "5.1"
        p.build = "2600"
        p.servicePack = "Service Pack 3"
        p.hal = "acpiapic_mp"
        p.services = ["viostor": 0, "atapi": 0, "intelide": 3, "pciide": 3]
        p.criticalDevices = ["pci#ven_1af4&dev_1001&subsys_00021af4&rev_00": "viostor", "primary_ide_channel": "atapi"]
        p.driverFiles = ["viostor.sys", "atapi.sys", "intelide.sys", "pciide.sys", "pciidex.sys"]
        return p
    }

    /// Windows Server 2008 x64: one ACPI HAL for UP/MP, clock in UTC.
    static var server2008x64: WindowsProfile {
        var p = WindowsProfile()
        p.product = "Windows Server (R) 2008 Enterprise"
        p.version = "6.0"
        p.build = "6002"
        p.architecture = "AMD64"
        p.hal = "acpiapic"
        p.realTimeIsUniversal = true
        p.services = ["atapi": 0, "intelide": 0, "pciide": 3, "LSI_SCSI": 0, "intelppm": 3]
        p.criticalDevices = ["pci#ven_8086&dev_7010": "intelide", "pci#ven_1000&dev_0030": "LSI_SCSI"]
        p.driverFiles = ["atapi.sys", "intelide.sys", "pciide.sys", "pciidex.sys", "lsi_scsi.sys", "intelppm.sys"]
        return p
    }

    var ccs: String { "ControlSet" + String(format: "%03d", controlSet) }

    func systemHive() -> [UInt8] {
        var b = HiveBuilder(rootName: "$$$PROTO.HIV", minorVersion: version.hasPrefix("5") ? 3 : 5)
        b.dirty = dirtySystemHive
        b.set("Select", "Current", .dword(selectCurrent ?? UInt32(controlSet)))
        b.set("Select", "Default", .dword(selectDefault ?? UInt32(controlSet)))
        b.set("Select", "LastKnownGood", .dword(2))
        b.set("ControlSet002\\Services\\atapi", "Start", .dword(0))  // a decoy: not the current set
        b.set(ccs + "\\Control\\Session Manager\\Environment", "PROCESSOR_ARCHITECTURE", .string(architecture))
        b.set(ccs + "\\Control\\ComputerName\\ComputerName", "ComputerName", .string("OLDBOX"))
        b.set(ccs + "\\Control\\TimeZoneInformation", "Bias", .dword(0xFFFF_FFC4))
        if realTimeIsUniversal { b.set(ccs + "\\Control\\TimeZoneInformation", "RealTimeIsUniversal", .dword(1)) }
        b.set(ccs + "\\Enum\\Root\\ACPI_HAL\\0000", "HardwareID", .multiString([hal]))
        for (name, start) in services {
            b.set(ccs + "\\Services\\" + name, "Start", .dword(start))
            b.set(ccs + "\\Services\\" + name, "Type", .dword(1))
            b.set(ccs + "\\Services\\" + name, "ImagePath", .expandString("System32\\DRIVERS\\\(name.lowercased()).sys"))
        }
        // Enough unrelated services that lookups go through several list cells.
        for i in 0..<120 { b.set(ccs + "\\Services\\Svc\(i)", "Start", .dword(3)) }
        for (key, service) in criticalDevices {
            b.set(ccs + "\\Control\\CriticalDeviceDatabase\\" + key, "Service", .string(service))
            b.set(ccs + "\\Control\\CriticalDeviceDatabase\\" + key, "ClassGUID", .string("{4D36E96A-E325-11CE-BFC1-08002BE10318}"))
        }
        if driverDatabase { b.addKey("DriverDatabase\\DeviceIds") }
        var bytes = b.build()
        if brokenSystemHive { bytes.replaceSubrange(36..<40, with: [0xF8, 0xFF, 0xFF, 0x0F]) }
        if let truncateSystemHive { bytes = Array(bytes.prefix(truncateSystemHive)) }
        return bytes
    }

    func softwareHive() -> [UInt8] {
        var b = HiveBuilder(rootName: "$$$PROTO.HIV", minorVersion: version.hasPrefix("5") ? 3 : 5)
        let cv = "Microsoft\\Windows NT\\CurrentVersion"
        b.set(cv, "ProductName", .string(product))
        if !currentVersionMissing { b.set(cv, "CurrentVersion", .string(version)) }
        if let currentBuild { b.set(cv, "CurrentBuild", .string(currentBuild)) }
        b.set(cv, "CurrentBuildNumber", .string(build))
        if let servicePack { b.set(cv, "CSDVersion", .string(servicePack)) }
        b.set(cv, "SystemRoot", .string("C:\\WINDOWS"))
        if vmwareTools { b.set("VMware, Inc.\\VMware Tools", "InstallPath", .string("C:\\Program Files\\VMware\\VMware Tools\\")) }
        return b.build()
    }

    /// Files for the volume root.
    func tree() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [
            "WINDOWS/system32/config/SYSTEM": systemHive(),
            "WINDOWS/system32/config/SOFTWARE": softwareHive(),
            "WINDOWS/system32/cmd.exe": Array("MZ".utf8) + [UInt8](repeating: 0x90, count: 2000),
            "boot.ini": Array("[boot loader]\r\ndefault=multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS\r\n".utf8),
        ]
        for file in driverFiles { files["WINDOWS/system32/drivers/\(file)"] = Array("MZ driver \(file)".utf8) + [UInt8](repeating: 0xCC, count: 4000) }
        if architecture == "AMD64" { files["WINDOWS/SysWOW64/cmd.exe"] = Array("MZ".utf8) }
        if let hiberfil { files["hiberfil.sys"] = Array(hiberfil.utf8) + [UInt8](repeating: 0, count: 8192) }
        return files
    }

    /// Builds the disk image with `layout` (mbr63, mbr1m, gpt, volume); nil when tools are missing.
    func image(in dir: URL, layout: String, test: String = #function) throws -> String? {
        let tree = dir.appendingPathComponent("tree-\(layout)")
        try GuestTools.writeTree(tree, self.tree())
        let path = dir.appendingPathComponent("\(layout).img").path
        guard try GuestTools.makeFixture(["ntfs", path, layout, tree.path], test: test) else { return nil }
        return path
    }
}
