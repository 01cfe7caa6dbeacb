import FerryNTFS
import FerryRegistry
import FerryBinary

/// Reads the Windows facts that decide booting on KVM from an NTFS volume, offline and
/// read-only: SYSTEM and SOFTWARE hives, driver files, hiberfil.sys, the volume flags.
enum WindowsInspector {
    static let systemRoots = ["Windows", "WINNT", "WIN", "WIN32"]

    /// Storage and CPU drivers reported (formats/windows-and-targets §2, §6).
    static let drivers = [
        "atapi", "intelide", "pciide", "pciidex", "viostor", "vioscsi", "symmpi", "LSI_SCSI", "LSI_SAS", "BusLogic", "vmscsi",
        "pvscsi", "intelppm", "processor", "amdppm",
    ]

    /// Controllers QEMU can present, and the PCI ids Windows looks up in the CDB.
    static let controllers: [(id: String, device: String)] = [
        ("8086:7010", "PIIX3 IDE (QEMU pc default)"), ("8086:7111", "PIIX4 IDE (VMware IDE)"),
        ("1af4:1001", "virtio-blk (legacy)"), ("1af4:1042", "virtio-blk (modern)"),
        ("1af4:1004", "virtio-scsi (legacy)"), ("1af4:1048", "virtio-scsi (modern)"),
        // The compatible id every PCI IDE controller also offers; MergeIDE maps it to pciide.
        ("class:0101", "any PCI IDE controller (PCI\\CC_0101)"),
    ]

    /// Finds a system root on `volume` and reads its facts; nil when there is no Windows here.
    static func inspect(_ volume: NTFSVolume, partition: Int, warnings: inout [String]) throws -> WindowsReport? {
        var found: (root: String, stream: NTFSStream)?
        for root in systemRoots {
            if let stream = try? volume.open("/\(root)/System32/config/SYSTEM") {
                found = (root, stream)
                break
            }
        }
        guard let (rootName, systemStream) = found else { return nil }
        // Report the directory's on-disk spelling ("WINDOWS", "WINNT"): the lookup was case-insensitive.
        let onDisk = (try? volume.file(at: "/" + rootName)).flatMap { $0 }.flatMap(volume.longName(of:))
        let systemRoot = "\\" + (onDisk ?? rootName)
        var report = WindowsReport(
            partition: partition, systemRoot: systemRoot, drivers: [], criticalDevices: [], rtcLocalTime: true, vmwareTools: false,
            driverDatabase: false, hibernated: false, volumeDirty: false, systemHiveDirty: false)
        do {
            let system = try Hive(storage: StreamHiveStorage(stream: systemStream))
            report.systemHiveDirty = system.isDirty
            let sets = try ControlSets(system)
            report.controlSet = sets.boot
            report.currentControlSet = sets.current
            report.defaultControlSet = sets.default
            if let note = sets.note { warnings.append("SYSTEM hive: " + note) }
            if let ccs = sets.boot {
                try readSystemFacts(system, ccs: ccs, volume: volume, rootName: rootName, into: &report)
            } else {
                report.systemHiveReadable = false
                warnings.append("SYSTEM hive: no control set exists (Select names none, and there is no ControlSet00N)")
            }
            report.driverDatabase = try system.key("DriverDatabase") != nil
        } catch {
            report.systemHiveReadable = false
            // A hive too damaged to walk still says in its base block whether it was dirty.
            if let head = try? systemStream.read(at: 0, count: BaseBlock.size), let base = try? BaseBlock(parsing: head) {
                report.systemHiveDirty = base.sequenceMismatch || !base.checksumValid(in: head)
            }
            warnings.append("SYSTEM hive unreadable: \(error)")
        }

        if let softwareStream = try? volume.open("/\(rootName)/System32/config/SOFTWARE") {
            do {
                let software = try Hive(storage: StreamHiveStorage(stream: softwareStream))
                report.softwareHiveDirty = software.isDirty
                try readSoftwareFacts(software, into: &report)
            } catch {
                warnings.append("SOFTWARE hive unreadable: \(error)")
            }
        } else {
            warnings.append("no SOFTWARE hive under \(systemRoot)\\System32\\config")
        }
        if report.architecture == nil, (try? volume.file(at: "/\(rootName)/SysWOW64")) != nil {
            report.architecture = "x64"
        }
        report.hibernated = (try? volume.hibernationState()) == .hibernated
        report.volumeDirty = (try? volume.volumeInformation().isDirty) ?? false
        report.journal = volume.journalState().rawValue
        return report
    }

    static func readSystemFacts(_ hive: Hive, ccs: String, volume: NTFSVolume, rootName: String, into report: inout WindowsReport) throws {
        let arch = try hive.value(at: ccs + "\\Control\\Session Manager\\Environment", "PROCESSOR_ARCHITECTURE")?.string
        report.architecture = arch.map { $0.uppercased() == "AMD64" ? "x64" : ($0.uppercased() == "X86" ? "x86" : $0) }
        report.computerName = try hive.value(at: ccs + "\\Control\\ComputerName\\ComputerName", "ComputerName")?.string
        if let utc = try hive.value(at: ccs + "\\Control\\TimeZoneInformation", "RealTimeIsUniversal")?.integer {
            report.rtcLocalTime = utc & 0xFFFF_FFFF == 0
        } else if case .binary(let bytes)? = try hive.value(at: ccs + "\\Control\\TimeZoneInformation", "RealTimeIsUniversal") {
            report.rtcLocalTime = !bytes.contains { $0 != 0 }
        }
        for (kind, _) in [("ACPI_HAL", true), ("PCI_HAL", false)] {
            if let ids = try hive.value(at: ccs + "\\Enum\\Root\\\(kind)\\0000", "HardwareID")?.strings, let id = ids.first {
                report.hal = id.lowercased()
                let hal = HAL.describe(id)
                // 64-bit Windows ships one HAL file for every HAL id.
                report.halFile = report.architecture == "x64" ? (hal.file == nil ? nil : "hal.dll") : hal.file
                report.halMultiprocessor = hal.multiprocessor
                report.halACPI = hal.acpi
                break
            }
        }
        report.crashAutoReboot = try hive.value(at: ccs + "\\Control\\CrashControl", "AutoReboot")?.integer.map { UInt32(truncatingIfNeeded: $0) }
        report.vmwareTools = try ["VMTools", "vmci", "vmhgfs", "vmmouse", "vmxnet", "vmx_svga"].contains {
            try hive.key(ccs + "\\Services\\" + $0) != nil
        }
        let services = try hive.key(ccs + "\\Services")
        for name in drivers {
            report.drivers.append(try driver(name, services: services, hive: hive, volume: volume, rootName: rootName))
        }
        let cdb = try hive.key(ccs + "\\Control\\CriticalDeviceDatabase")
        let cdbKeys = try cdb.map { try hive.subkeys(of: $0).map(\.name) } ?? []
        for (id, device) in controllers {
            report.criticalDevices.append(
                try criticalDevice(id, device, cdbKeys: cdbKeys, ccs: ccs, hive: hive, services: services, volume: volume, rootName: rootName))
        }
    }

    static func driver(_ name: String, services: KeyNode?, hive: Hive, volume: NTFSVolume, rootName: String) throws -> DriverReport {
        let key = try services.flatMap { try hive.subkey(name, of: $0) }
        var start: UInt32?
        var imagePath: String?
        if let key {
            if let vk = try hive.value("Start", of: key) { start = RegistryValue(type: vk.type, data: try hive.data(of: vk)).integer.map { UInt32(truncatingIfNeeded: $0) } }
            if let vk = try hive.value("ImagePath", of: key) { imagePath = RegistryValue(type: vk.type, data: try hive.data(of: vk)).string }
        }
        let path = DriverPath.resolve(imagePath, service: name, systemRoot: rootName)
        let exists = (try? volume.file(at: path)).flatMap { $0 } != nil
        return DriverReport(
            name: name, installed: key != nil, start: start, startName: start.map(DriverPath.startName), imagePath: imagePath, fileExists: exists)
    }

    static func criticalDevice(
        _ id: String, _ device: String, cdbKeys: [String], ccs: String, hive: Hive, services: KeyNode?, volume: NTFSVolume, rootName: String
    ) throws -> CriticalDeviceReport {
        let parts = id.split(separator: ":").map(String.init)
        let prefix = parts.first == "class" ? "pci#cc_\(parts.last ?? "")" : "pci#ven_\(parts.first ?? "")&dev_\(parts.last ?? "")"
        let match = cdbKeys.first {
            let lower = $0.lowercased()
            return lower == prefix || lower.hasPrefix(prefix + "&")
        }
        var report = CriticalDeviceReport(id: id, device: device, present: match != nil, key: match, service: nil, serviceReady: false)
        if let match {
            let service = try hive.value(at: ccs + "\\Control\\CriticalDeviceDatabase\\" + match, "Service")?.string
            report.service = service
            if let service {
                let driver = try driver(service, services: services, hive: hive, volume: volume, rootName: rootName)
                report.serviceReady = driver.start == 0 && driver.fileExists
            }
        }
        return report
    }

    static func readSoftwareFacts(_ hive: Hive, into report: inout WindowsReport) throws {
        guard let cv = try hive.key("Microsoft\\Windows NT\\CurrentVersion") else { return }
        func text(_ name: String) throws -> String? {
            guard let vk = try hive.value(name, of: cv) else { return nil }
            return RegistryValue(type: vk.type, data: try hive.data(of: vk)).string
        }
        func number(_ name: String) throws -> UInt64? {
            guard let vk = try hive.value(name, of: cv) else { return nil }
            return RegistryValue(type: vk.type, data: try hive.data(of: vk)).integer
        }
        report.productName = try text("ProductName")
        report.edition = try text("EditionID") ?? text("InstallationType")
        if let major = try number("CurrentMajorVersionNumber"), let minor = try number("CurrentMinorVersionNumber") {
            report.version = "\(major).\(minor)"
        } else if let version = try text("CurrentVersion") {
            report.version = version
        } else if let product = report.productName, let inferred = ProductVersion.infer(product) {
            report.version = inferred
            report.versionInferred = true
        }
        // CurrentBuild can hold "1.511.1 () (Obsolete data - do not use)": only a plain number is a build.
        report.build = try [text("CurrentBuildNumber"), text("CurrentBuild")].compactMap { $0 }
            .first { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
        report.servicePack = try text("CSDVersion")
        if try hive.key("VMware, Inc.\\VMware Tools") != nil { report.vmwareTools = true }
    }
}

/// The NT version a product name stands for, when `CurrentVersion` is missing (a damaged or
/// partial SOFTWARE hive): so the 5.x verdicts (CPU model, MergeIDE) are not skipped for an XP guest.
enum ProductVersion {
    static func infer(_ product: String) -> String? {
        let p = product.lowercased()
        let table: [(String, String)] = [
            ("windows 2000", "5.0"), ("xp professional x64", "5.2"), ("windows xp", "5.1"), ("server 2003", "5.2"),
            ("windows vista", "6.0"), ("server 2008 r2", "6.1"), ("server 2008", "6.0"), ("windows 7", "6.1"),
            ("windows 8.1", "6.3"), ("server 2012 r2", "6.3"), ("windows 8", "6.2"), ("server 2012", "6.2"),
            ("windows 10", "10.0"), ("windows 11", "10.0"), ("server 2016", "10.0"), ("server 2019", "10.0"),
            ("server 2022", "10.0"), ("server 2025", "10.0"),
        ]
        return table.first { p.contains($0.0) }?.1
    }
}

/// HAL hardware ids (KB309283) → the HAL file, and whether it runs more than one CPU / uses ACPI.
enum HAL {
    static func describe(_ hardwareID: String) -> (file: String?, multiprocessor: Bool?, acpi: Bool?) {
        switch hardwareID.lowercased() {
        case "acpipic_up": return ("halacpi.dll", false, true)
        case "acpiapic_up": return ("halaacpi.dll", false, true)
        case "acpiapic_mp": return ("halmacpi.dll", true, true)
        case "acpiapic": return ("halmacpi.dll", true, true)  // Vista+ and x64: one HAL for UP and MP
        case "e_isa_up": return ("hal.dll", false, false)
        case "mps_up": return ("halapic.dll", false, false)
        case "mps_mp": return ("halmps.dll", true, false)
        case "syspro_mp": return ("halsp.dll", true, false)
        default: return (nil, nil, nil)
        }
    }
}

/// Where a service's driver file lives on the volume.
enum DriverPath {
    /// ImagePath forms: "System32\DRIVERS\x.sys", "\SystemRoot\System32\drivers\x.sys",
    /// "\??\C:\WINDOWS\system32\drivers\x.sys"; absent means System32\drivers\<service>.sys.
    static func resolve(_ imagePath: String?, service: String, systemRoot: String) -> String {
        guard var path = imagePath?.replacingBackslashes, !path.isEmpty else {
            return "/\(systemRoot)/System32/drivers/\(service).sys"
        }
        let lower = path.lowercased()
        if lower.hasPrefix("/systemroot/") {
            path = "/\(systemRoot)/" + path.dropFirst("/systemroot/".count)
        } else if lower.hasPrefix("/??/"), path.count > 6 {
            path = String(path.dropFirst(6))  // "/??/C:" → volume-relative
        } else if lower.count > 2, Array(lower)[1] == ":" {
            path = String(path.dropFirst(2))
        } else if !path.hasPrefix("/") {
            path = "/\(systemRoot)/" + path
        }
        return path
    }

    static func startName(_ start: UInt32) -> String {
        switch start {
        case 0: return "boot"
        case 1: return "system"
        case 2: return "automatic"
        case 3: return "manual"
        case 4: return "disabled"
        default: return "unknown"
        }
    }
}

extension String {
    var replacingBackslashes: String { String(map { $0 == "\\" ? "/" : $0 }) }
}
