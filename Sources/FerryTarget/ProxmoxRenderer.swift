/// `qm create` / `qm importdisk` / `qm set` lines for Proxmox VE (qm(1), pve-docs `qm.adoc`).
public enum ProxmoxRenderer {
    public static func render(_ plan: TargetPlan, _ o: RenderOptions = RenderOptions()) -> String {
        let id = "\(o.proxmoxVMID)"
        var create = ["qm", "create", id, "--name", plan.name, "--ostype", ostype(plan), "--machine", plan.machine == "q35" ? "q35" : "pc"]
        create += ["--bios", plan.firmware == .uefi ? "ovmf" : "seabios"]
        create += ["--memory", "\(plan.memoryMB)", "--sockets", "\(plan.sockets)", "--cores", "\(plan.coresPerSocket)", "--cpu", plan.cpuModel]
        create += ["--acpi", plan.acpi ? "1" : "0", "--localtime", plan.clock == .localtime ? "1" : "0"]
        if let uuid = plan.smbiosUUID { create += ["--smbios1", "uuid=\(uuid)"] }
        if plan.disks.contains(where: { $0.bus == .virtioSCSI }) { create += ["--scsihw", "virtio-scsi-single"] }
        for nic in plan.nics {
            create += ["--net\(nic.index)", "\(model(nic.model))" + (nic.mac.map { "=\($0.uppercased())" } ?? "") + ",bridge=\(o.bridge ?? "vmbr0")"]
        }
        // The EFI variables disk is created first, so it is vm-ID-disk-0 and imports start at 1.
        var next = 0
        if plan.firmware == .uefi {
            create += ["--efidisk0", "\(o.proxmoxStorage):1,efitype=4m,pre-enrolled-keys=\(plan.secureBoot ? 1 : 0)"]
            next = 1
        }
        for cd in 0..<plan.cdroms { create += ["--ide\(2 + cd)", "none,media=cdrom"] }
        var lines = [Shell.line(create)]
        var slots: [String: Int] = [:]
        var boot: [String] = []
        for disk in plan.disks {
            let bus = disk.bus == .virtioSCSI ? "scsi" : disk.bus.rawValue
            let slot = bus + "\(slots[bus, default: 0])"
            slots[bus, default: 0] += 1
            lines.append(Shell.line(["qm", "importdisk", id, disk.path, o.proxmoxStorage, "--format", "raw"]))
            lines.append(Shell.line(["qm", "set", id, "--\(slot)", "\(o.proxmoxStorage):vm-\(id)-disk-\(next)"]))
            next += 1
            boot.append(slot)
        }
        if !boot.isEmpty { lines.append(Shell.line(["qm", "set", id, "--boot", "order=" + boot.joined(separator: ";")])) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Proxmox's `ostype` (qm.conf(5)): w2k, wxp, w2k3, w2k8, win7, win8, win10, win11, l26, other.
    static func ostype(_ plan: TargetPlan) -> String {
        switch (plan.family, plan.windowsVersion ?? "") {
        case ("windows2000", _): return "w2k"
        case ("windowsXP2003", "5.1"): return "wxp"
        case ("windowsXP2003", _): return "w2k3"
        case ("windowsModern", "6.0"): return "w2k8"
        case ("windowsModern", "6.1"): return "win7"
        case ("windowsModern", "6.2"), ("windowsModern", "6.3"): return "win8"
        case ("windowsModern", _): return "win10"
        case ("linux", _): return "l26"
        default: return "other"
        }
    }

    static func model(_ m: TargetPlan.NICModel) -> String {
        switch m {
        case .virtio: return "virtio"
        case .e1000: return "e1000"
        case .e1000e: return "e1000e"
        case .rtl8139: return "rtl8139"
        case .pcnet: return "pcnet"
        }
    }
}
