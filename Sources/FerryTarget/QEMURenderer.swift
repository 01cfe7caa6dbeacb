/// A QEMU command line for the plan (qemu-system-x86_64(1)). Disks are `-drive if=none` plus
/// an explicit `-device`, so the bus, the slot and the boot order are exactly the plan's.
public enum QEMURenderer {
    public static func arguments(_ plan: TargetPlan, _ o: RenderOptions = RenderOptions()) -> [String] {
        var a = [o.qemuBinary, "-name", plan.name.qemuEscaped]
        var machine = "\(plan.machine),accel=\(o.accelerator)"
        if plan.secureBoot { machine += ",smm=on" }
        a += ["-machine", machine]
        a += ["-cpu", plan.cpuModel == "host" && o.accelerator != "kvm" ? "max" : plan.cpuModel]
        a += ["-smp", "\(plan.vcpus),sockets=\(plan.sockets),cores=\(plan.coresPerSocket),threads=1"]
        a += ["-m", "\(plan.memoryMB)"]
        a += ["-rtc", "base=\(plan.clock.rawValue)"]
        if let uuid = plan.smbiosUUID { a += ["-smbios", "type=1,uuid=\(uuid)"] }
        if plan.firmware == .uefi {
            if plan.secureBoot {
                a += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
                a += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=\(o.ovmfSecureCode.qemuEscaped)"]
                a += ["-drive", "if=pflash,format=raw,unit=1,file=\(varsCopy(plan, o).qemuEscaped)"]
            } else {
                a += ["-bios", o.ovmf]
            }
        }
        if plan.disks.contains(where: { $0.bus == .sata }) { a += ["-device", "ahci,id=sata0"] }
        if plan.disks.contains(where: { $0.bus == .virtioSCSI }) { a += ["-device", "virtio-scsi-pci,id=scsi0"] }
        var ideSlot = 0
        for disk in plan.disks {
            a += ["-drive", "file=\(disk.path.qemuEscaped),format=\(disk.format),if=none,id=disk\(disk.index)"]
            let boot = ",bootindex=\(disk.index)"
            switch disk.bus {
            case .ide:
                a += ["-device", "ide-hd,drive=disk\(disk.index),\(ideBus(plan, ideSlot))\(boot)"]
                ideSlot += 1
            case .sata: a += ["-device", "ide-hd,drive=disk\(disk.index),bus=sata0.\(disk.index)\(boot)"]
            case .virtio: a += ["-device", "virtio-blk-pci,drive=disk\(disk.index)\(boot)"]
            case .virtioSCSI: a += ["-device", "scsi-hd,drive=disk\(disk.index),bus=scsi0.0,scsi-id=\(disk.index)\(boot)"]
            }
        }
        for cd in 0..<plan.cdroms where ideSlot < (plan.machine == "q35" ? 6 : 4) {
            a += ["-drive", "if=none,id=cd\(cd),media=cdrom", "-device", "ide-cd,drive=cd\(cd),\(ideBus(plan, ideSlot))"]
            ideSlot += 1
        }
        for nic in plan.nics {
            if let bridge = o.bridge {
                a += ["-netdev", "bridge,id=net\(nic.index),br=\(bridge.qemuEscaped)"]
            } else {
                a += ["-netdev", "user,id=net\(nic.index)"]
            }
            a += ["-device", "\(device(nic.model)),netdev=net\(nic.index)" + (nic.mac.map { ",mac=\($0)" } ?? "")]
        }
        return a + o.qemuExtra
    }

    public static func commandLine(_ plan: TargetPlan, _ o: RenderOptions = RenderOptions()) -> String {
        var out = ""
        if plan.firmware == .uefi, plan.secureBoot {
            out += Shell.line(["cp", o.ovmfSecureVars, varsCopy(plan, o)]) + "\n"
        }
        let words = arguments(plan, o).map(Shell.quote)
        // One option and its value per line, as people write them.
        var lines: [String] = [words[0]]
        var i = 1
        while i < words.count {
            if words[i].hasPrefix("-"), i + 1 < words.count, !words[i + 1].hasPrefix("-") {
                lines.append(words[i] + " " + words[i + 1])
                i += 2
            } else {
                lines.append(words[i])
                i += 1
            }
        }
        return out + lines.joined(separator: " \\\n  ") + "\n"
    }

    static func varsCopy(_ plan: TargetPlan, _ o: RenderOptions) -> String { o.ovmfVarsCopy ?? "\(plan.name)_VARS.fd" }

    /// On `pc` two IDE channels with two units each; on q35 six AHCI ports named ide.N.
    static func ideBus(_ plan: TargetPlan, _ slot: Int) -> String {
        plan.machine == "q35" ? "bus=ide.\(slot)" : "bus=ide.\(slot / 2),unit=\(slot % 2)"
    }

    static func device(_ model: TargetPlan.NICModel) -> String {
        switch model {
        case .virtio: return "virtio-net-pci"
        case .e1000: return "e1000"
        case .e1000e: return "e1000e"
        case .rtl8139: return "rtl8139"
        case .pcnet: return "pcnet"
        }
    }
}
