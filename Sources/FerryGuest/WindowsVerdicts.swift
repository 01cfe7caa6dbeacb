/// Verdicts about a Windows guest: storage boot paths, HAL/CPU, RTC, blockers.
enum WindowsVerdicts {
    static func judge(_ w: WindowsReport, report: InspectionReport) -> [Verdict] {
        var out: [Verdict] = []
        let version = w.version.flatMap { Double($0) } ?? 0
        let legacy = version > 0 && version < 6.0  // 2000/XP/2003: the seed's hard case
        if w.hibernated {
            out.append(Verdict(id: "hibernated", ok: false, severity: .blocker,
                reason: "hiberfil.sys holds a live hibernation image (or Windows 8+ Fast Startup): Windows would resume stale memory over the copied disk",
                fix: "boot the source, then shut down fully (disable Fast Startup / use shutdown /s /t 0) before copying"))
        }
        if w.volumeDirty || w.journal == "unclean" {
            let why = w.volumeDirty ? "the NTFS volume is marked dirty" : "the NTFS journal ($LogFile) is open without the clean flag"
            out.append(Verdict(id: "dirty", ok: false, severity: .warning,
                reason: "\(why): Windows did not dismount it cleanly (a crash-consistent copy or a running VM?)",
                fix: "shut the source down cleanly, or let chkdsk run on first boot; ferry will not write to a dirty volume"))
        }
        if w.systemHiveDirty || w.softwareHiveDirty == true {
            out.append(Verdict(id: "hive-dirty", ok: false, severity: .warning,
                reason: "a registry hive is dirty (its .LOG files hold newer data): it was copied from a running or crashed system",
                fix: "shut the source down cleanly and copy again"))
        }
        if legacy, report.partitionTable == "gpt" {
            out.append(Verdict(id: "gpt-legacy-windows", ok: false, severity: .blocker,
                reason: "Windows \(w.version ?? "") cannot boot from a GPT disk", fix: "keep the MBR partition table of the source disk"))
        }
        out += bootSector(w, report: report)
        if report.partitions.contains(where: { $0.alignment == "LBA63" }) {
            out.append(Verdict(id: "alignment", ok: true, severity: .info,
                reason: "XP/2003-style partitions at LBA 63: the boot code depends on hidden sectors and geometry",
                fix: "copy the disk as is; do not re-align or re-partition"))
        }
        if w.systemHiveReadable {
            out.append(ide(w, legacy: legacy, version: version))
            out.append(virtio(w, version: version))
            out.append(virtio(w, version: version, virtioSCSI))
        } else {
            out.append(Verdict(id: "system-hive", ok: false, severity: .blocker,
                reason: "the SYSTEM hive or its current control set is unreadable: storage drivers and the CriticalDeviceDatabase cannot be checked",
                fix: "copy the disk again from a cleanly shut down source; see the warnings for the damage found"))
        }
        out += cpu(w, legacy: legacy)
        if w.rtcLocalTime {
            out.append(Verdict(id: "rtc", ok: false, severity: .warning,
                reason: "Windows keeps the hardware clock in local time (no RealTimeIsUniversal=1)",
                fix: "run the VM with a local-time RTC: Ganeti use_localtime=true, QEMU -rtc base=localtime"))
        } else {
            out.append(Verdict(id: "rtc", ok: true, severity: .info, reason: "RealTimeIsUniversal=1: the hardware clock is UTC"))
        }
        if w.systemHiveReadable {
            if w.crashAutoReboot == 0 {
                out.append(Verdict(id: "crash-visible", ok: true, severity: .info, reason: "CrashControl AutoReboot=0: a STOP error stays on screen"))
            } else {
                out.append(Verdict(id: "crash-visible", ok: false, severity: .info,
                    reason: "CrashControl AutoReboot=\(w.crashAutoReboot.map(String.init) ?? "1 (default)"): a STOP error on the new host reboots at once, a loop with no message",
                    fix: "ferry fix --only crash-visible (AutoReboot=0), so a 0x7B stays on screen"))
            }
        }
        if w.vmwareTools {
            out.append(Verdict(id: "vmware-tools", ok: false, severity: .warning,
                reason: "VMware Tools are installed; they cannot be uninstalled once the VM runs elsewhere (MSI error 1603)",
                fix: "uninstall VMware Tools on the source before the final copy"))
        }
        return out
    }

    /// The NTFS boot code reads the volume through hidden sectors (and, on XP/2000, CHS with the
    /// BPB heads): a partition copied into a new table at another offset prints "A disk read error
    /// occurred" (formats §5.4). virt-v2v's heads rule: < 2,114,445,312 B → 64, < 4,228,374,780 B → 128, else 255.
    static func bootSector(_ w: WindowsReport, report: InspectionReport) -> [Verdict] {
        var out: [Verdict] = []
        if let hidden = w.bootSectorHiddenSectors, let start = w.partitionStartLBA, hidden != start {
            out.append(Verdict(id: "hidden-sectors", ok: false, severity: .blocker,
                reason: "the NTFS boot sector says the volume starts at LBA \(hidden) but its partition starts at LBA \(start) (a partition copied into a new table?): the boot code will fail with \"A disk read error occurred\"",
                fix: "copy the original whole disk, or ferry fix --only ntfs-geometry (sets the NTFS hidden-sectors field, VBR offset 0x1C, to \(start))"))
        }
        if let heads = w.bootSectorHeads, let version = w.version, version == "5.0" || version == "5.1" {
            let expected: UInt16 = report.diskSize < 2_114_445_312 ? 0x40 : (report.diskSize < 4_228_374_780 ? 0x80 : 0xFF)
            if heads != expected {
                out.append(Verdict(id: "ntfs-heads", ok: false, severity: .warning,
                    reason: "the NTFS boot sector has \(heads) heads; Windows \(version) boot code on QEMU's BIOS geometry for this disk size needs \(expected)",
                    fix: "ferry fix --only ntfs-geometry (sets the NTFS BPB heads, VBR offset 0x1A, to \(expected), as virt-v2v does)"))
            }
        }
        return out
    }

    static func driver(_ w: WindowsReport, _ name: String) -> DriverReport? {
        w.drivers.first { $0.name.lowercased() == name.lowercased() }
    }

    static func cdb(_ w: WindowsReport, _ id: String) -> CriticalDeviceReport? { w.criticalDevices.first { $0.id == id } }

    static func describe(_ d: DriverReport?, _ name: String) -> String? {
        guard let d, d.installed else { return "\(name) service missing" }
        var problems: [String] = []
        if d.start != 0 { problems.append("\(name) Start=\(d.start.map(String.init) ?? "?") (not boot)") }
        if !d.fileExists { problems.append("\(name).sys missing") }
        return problems.isEmpty ? nil : problems.joined(separator: ", ")
    }

    /// IDE on QEMU's PIIX3 needs the CDB entry for 8086:7010 → intelide, intelide/pciide
    /// boot-start, atapi boot-start for the channels, and the four .sys files (KB314082).
    static func ide(_ w: WindowsReport, legacy: Bool, version: Double) -> Verdict {
        if w.driverDatabase {
            return Verdict(id: "boot-ide", ok: true, severity: .info,
                reason: "Windows 8 or later loads inbox IDE/SATA drivers for a new controller (DriverDatabase)")
        }
        var problems: [String] = []
        let piix3 = cdb(w, "8086:7010")
        // Windows also looks up compatible ids: PCI\CC_0101 → pciide drives any PCI IDE controller.
        let generic = cdb(w, "class:0101")
        let viaGeneric = piix3?.serviceReady != true && generic?.serviceReady == true
        if !viaGeneric, piix3?.present != true {
            problems.append("no CriticalDeviceDatabase entry for PCI\\VEN_8086&DEV_7010 (PIIX3)")
        } else if !viaGeneric, piix3?.serviceReady != true {
            problems.append("the PIIX3 entry's service \(piix3?.service ?? "?") is not boot-start with its file present")
        }
        if let p = describe(driver(w, "atapi"), "atapi") { problems.append(p) }
        if driver(w, "pciidex")?.fileExists != true { problems.append("pciidex.sys missing") }
        if problems.isEmpty {
            let how = viaGeneric ? "through the generic PCI\\CC_0101 entry (pciide)" : "CDB entry for 8086:7010"
            return Verdict(id: "boot-ide", ok: true, severity: .info, reason: "IDE on QEMU's PIIX3 (8086:7010) is prepared: \(how), atapi boot-start, driver files present")
        }
        var fix = "ferry fix --only mergeide: MergeIDE (KB314082) offline in \(w.controlSet ?? "the current control set"): CDB entries, atapi/intelide/pciide Start=0 (the .sys files must be on the disk: driver.cab has them)"
        if let piix4 = cdb(w, "8086:7111"), piix4.serviceReady, driver(w, "atapi")?.start == 0 {
            fix += "; or present PIIX4 IDE (QEMU -M pc,x-south-bridge=piix4-isa), which this guest already knows"
        }
        return Verdict(id: "boot-ide", ok: false, severity: .blocker,
            reason: "will stop with 0x7B INACCESSIBLE_BOOT_DEVICE on IDE: " + problems.joined(separator: "; "), fix: fix)
    }

    /// A paravirtual controller boots when its driver is boot-start with its file, and (before
    /// Windows 8) a CDB entry for the legacy or modern PCI id names it.
    struct Paravirtual {
        var id: String, bus: String, driver: String, ids: [String], devices: String
    }

    static let virtioBlk = Paravirtual(id: "boot-virtio-blk", bus: "VirtIO-blk", driver: "viostor", ids: ["1af4:1001", "1af4:1042"], devices: "DEV_1001 or DEV_1042")
    static let virtioSCSI = Paravirtual(id: "boot-virtio-scsi", bus: "VirtIO-SCSI", driver: "vioscsi", ids: ["1af4:1004", "1af4:1048"], devices: "DEV_1004 or DEV_1048")

    static func virtio(_ w: WindowsReport, version: Double, _ p: Paravirtual = virtioBlk) -> Verdict {
        let service = describe(driver(w, p.driver), p.driver)
        let cdbReady = w.driverDatabase || p.ids.compactMap { cdb(w, $0) }.contains { $0.present && $0.serviceReady }
        if service == nil, cdbReady {
            return Verdict(id: p.id, ok: true, severity: .info, reason: "\(p.driver) is boot-start with its file and a CDB entry for \(p.ids.joined(separator: "/"))")
        }
        var problems: [String] = []
        if let service { problems.append(service) }
        if !cdbReady { problems.append("no usable CriticalDeviceDatabase entry for PCI\\VEN_1AF4&\(p.devices)") }
        let fix = version > 0 && version < 5.1
            ? "virtio-win has no Windows 2000 drivers: use IDE (disk_type=ide)"
            : "inject \(p.driver) from virtio-win (xp/2k3 drivers: last in 0.1.173): Services\\\(p.driver) Start=0 and CDB PCI#VEN_1AF4&\(p.devices.prefix(8)) → \(p.driver); or use IDE"
        return Verdict(id: p.id, ok: false, severity: .warning,
            reason: "will stop with 0x7B on \(p.bus): " + problems.joined(separator: "; "), fix: fix)
    }

    /// The HAL decides how many vCPUs Windows uses; old Windows wants a generic CPU model.
    static func cpu(_ w: WindowsReport, legacy: Bool) -> [Verdict] {
        var out: [Verdict] = []
        switch w.halMultiprocessor {
        case false?:
            out.append(Verdict(id: "vcpus", ok: false, severity: .warning,
                reason: "uniprocessor HAL (\(w.hal ?? "?"), \(w.halFile ?? "?")): Windows will use only one CPU",
                fix: "give the VM 1 vCPU (vcpus=1); more are wasted"))
        case true?:
            out.append(Verdict(id: "vcpus", ok: true, severity: .info, reason: "multiprocessor HAL (\(w.hal ?? "?")): several vCPUs are used"))
        case nil:
            out.append(Verdict(id: "vcpus", ok: true, severity: .info, reason: "HAL not identified; vCPU count not checked"))
        }
        if w.halACPI == false {
            out.append(Verdict(id: "acpi", ok: true, severity: .info, reason: "non-ACPI HAL (\(w.hal ?? "?")): ACPI power-off will not work",
                fix: "stop the VM with a guest shutdown, not an ACPI button press"))
        }
        if legacy {
            out.append(Verdict(id: "cpu-model", ok: false, severity: .warning,
                reason: "Windows \(w.version ?? "5.x") on a host-passthrough or recent CPU model risks STOP 0x0A at boot",
                fix: "use a generic CPU model: Ganeti cpu_type=qemu64 (QEMU -cpu qemu64), with ACPI on (acpi=true)"))
        } else {
            out.append(Verdict(id: "cpu-model", ok: true, severity: .info, reason: "no CPU model constraint known for this Windows version"))
        }
        let ppm = w.drivers.filter { ["intelppm", "amdppm"].contains($0.name.lowercased()) && $0.installed && ($0.start ?? 4) < 4 }
        if !ppm.isEmpty {
            out.append(Verdict(id: "intelppm", ok: false, severity: .warning,
                reason: ppm.map { "\($0.name) Start=\($0.start.map(String.init) ?? "?")" }.joined(separator: ", ")
                    + ": the processor power driver blue-screens on a host of another CPU vendor or a CPU model without its MSRs",
                fix: "ferry fix --only cpu-drivers (Services\\intelppm and amdppm Start=4) before the first boot on KVM"))
        }
        return out
    }
}
