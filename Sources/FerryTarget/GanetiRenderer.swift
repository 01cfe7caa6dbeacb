/// `gnt-instance add` and `gnt-instance modify -H` for Ganeti's KVM hypervisor
/// (windows-and-targets §4; Ganeti's `Constants.hs` and `hv_kvm` at v3.1). Values inside
/// `-H kvm:a=b,c=d` are split on commas, so a comma inside one is written `\,`; the shell quoting of the whole `-H` word keeps its spaces.
public enum GanetiRenderer {
    /// The `-H kvm:` parameters, in a fixed order.
    public static func hypervisorParameters(_ plan: TargetPlan, _ o: RenderOptions = RenderOptions()) -> [(String, String)] {
        var p: [(String, String)] = []
        // kernel_path defaults to a Ganeti-built kernel: empty boots the disk (Windows, any guest with its own loader).
        p.append(("kernel_path", ""))
        p.append(("disk_type", diskType(plan.disks.first?.bus ?? .ide)))
        if plan.disks.first?.bus == .virtioSCSI { p.append(("scsi_controller_type", "virtio-scsi-pci")) }
        if plan.cdroms > 0 || plan.legacyWindows { p.append(("cdrom_disk_type", "ide")) }
        p.append(("nic_type", nicType(plan.nics.first?.model ?? .e1000)))
        p.append(("cpu_type", plan.cpuModel))
        if plan.coresPerSocket > 1 {
            p.append(("cpu_sockets", "\(plan.sockets)"))
            p.append(("cpu_cores", "\(plan.coresPerSocket)"))
            p.append(("cpu_threads", "1"))
        }
        p.append(("acpi", plan.acpi ? "true" : "false"))
        p.append(("use_localtime", plan.clock == .localtime ? "true" : "false"))
        // Ganeti "only supports the pc types properly" (gnt-instance(8)); q35 is never rendered.
        p.append(("machine_version", "pc"))
        if plan.windows {
            p.append(("vnc_bind_address", "0.0.0.0"))
            p.append(("usb_mouse", "tablet"))
        }
        var extra: [String] = []
        if let uuid = plan.smbiosUUID { extra.append("-smbios type=1,uuid=\(uuid)") }
        if plan.firmware == .uefi { extra.append("-bios \(o.ovmf)") }
        if !extra.isEmpty { p.append(("kvm_extra", extra.joined(separator: " "))) }
        return p
    }

    public static func render(_ plan: TargetPlan, _ o: RenderOptions = RenderOptions()) -> String {
        let h = "kvm:" + hypervisorParameters(plan, o).map { "\($0.0)=\(escape($0.1))" }.joined(separator: ",")
        var words = ["gnt-instance", "add", "-t", o.ganetiTemplate]
        for disk in plan.disks {
            if disk.path.hasPrefix("/dev/"), disk.path.split(separator: "/").count == 3 {
                // /dev/VG/LV: the disk was received into a logical volume; adopt it as it is.
                words += ["--disk", "\(disk.index):adopt=\(disk.path.split(separator: "/")[2])"]
            } else {
                let size = disk.size.map { "\(($0 + (1 << 20) - 1) >> 20)M" } ?? "UNKNOWN"
                words += ["--disk", "\(disk.index):size=\(size)"]
            }
        }
        for nic in plan.nics {
            words += ["--net", "\(nic.index):mac=\(nic.mac ?? "generate")" + (o.bridge.map { ",link=\($0)" } ?? "")]
        }
        if plan.nics.isEmpty { words.append("--no-nics") }
        words += ["-B", "vcpus=\(plan.vcpus),maxmem=\(plan.memoryMB),minmem=\(plan.memoryMB)"]
        words += ["-H", h, "-o", o.ganetiOS, "--no-install", "--no-start"]
        if let node = o.ganetiNode { words += ["-n", node] }
        words.append(plan.name)
        var out = Shell.line(words) + "\n"
        out += "# an instance that exists already gets the same hypervisor settings with:\n"
        out += Shell.line(["gnt-instance", "modify", "-H", String(h.dropFirst("kvm:".count)), plan.name]) + "\n"
        return out
    }

    /// What Ganeti's KVM cannot give this plan.
    static func limits(_ plan: TargetPlan) -> [String] {
        var out: [String] = []
        if plan.disks.contains(where: { $0.bus == .sata }) {
            out.append("Ganeti's KVM has no SATA disk_type: the plan's SATA disks are given as IDE (Windows Vista and later boot from it too)")
        }
        if Set(plan.disks.map(\.bus)).count > 1 { out.append("Ganeti gives every disk the one disk_type of the first") }
        if plan.firmware == .uefi {
            out.append("Ganeti has no UEFI setting: OVMF is passed with kvm_extra=-bios (EFI variables are not kept across restarts)")
        }
        if plan.machine == "q35" { out.append("Ganeti supports only the pc machine types: machine_version=pc instead of q35" + (plan.secureBoot ? "; secure boot is lost" : "")) }
        if plan.nics.contains(where: { $0.model == .e1000e }) { out.append("Ganeti has no e1000e nic_type: e1000 is used") }
        return out
    }

    static func diskType(_ bus: TargetPlan.DiskBus) -> String {
        switch bus {
        case .ide, .sata: return "ide"
        case .virtio: return "paravirtual"
        case .virtioSCSI: return "scsi-hd"
        }
    }

    static func nicType(_ model: TargetPlan.NICModel) -> String {
        switch model {
        case .virtio: return "paravirtual"
        case .e1000, .e1000e: return "e1000"
        case .rtl8139: return "rtl8139"
        case .pcnet: return "pcnet"
        }
    }

    /// Ganeti splits `-H` on unescaped commas; `kvm_extra` is later split on single spaces
    /// (hv_kvm: `kvm_extra.split(" ")`), so no quotes: they would reach QEMU as characters.
    static func escape(_ value: String) -> String { value.replacingEvery(",", as: "\\,") }
}
