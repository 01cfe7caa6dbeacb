/// A libvirt domain XML document for the plan (https://libvirt.org/formatdomain.html).
/// The domain `<uuid>` is the SMBIOS system UUID libvirt gives QEMU, so it carries `uuid.bios`.
public enum LibvirtRenderer {
    /// 0 → a, 25 → z, 26 → aa: libvirt's (and Linux's) disk naming.
    static func letters(_ n: Int) -> String {
        var n = n
        var out = ""
        repeat {
            out = String(UnicodeScalar(UInt8(97 + n % 26))) + out
            n = n / 26 - 1
        } while n >= 0
        return out
    }

    public static func render(_ plan: TargetPlan, _ o: RenderOptions = RenderOptions()) -> String {
        var x: [String] = ["<domain type='kvm'>"]
        x.append("  <name>\(plan.name.xmlEscaped)</name>")
        if let uuid = plan.smbiosUUID { x.append("  <uuid>\(uuid)</uuid>") }
        x.append("  <memory unit='MiB'>\(plan.memoryMB)</memory>")
        x.append("  <vcpu placement='static'>\(plan.vcpus)</vcpu>")
        x.append(plan.firmware == .uefi ? "  <os firmware='efi'>" : "  <os>")
        x.append("    <type arch='x86_64' machine='\(plan.machine)'>hvm</type>")
        if plan.firmware == .uefi {
            x.append("    <firmware>")
            x.append("      <feature enabled='\(plan.secureBoot ? "yes" : "no")' name='secure-boot'/>")
            x.append("    </firmware>")
        }
        x.append("  </os>")
        x.append("  <features>")
        if plan.acpi { x.append("    <acpi/>") }
        x.append("    <apic/>")
        if plan.secureBoot { x.append("    <smm state='on'/>") }
        x.append("  </features>")
        let topology = "<topology sockets='\(plan.sockets)' cores='\(plan.coresPerSocket)' threads='1'/>"
        if plan.cpuModel == "host" {
            x.append("  <cpu mode='host-passthrough'>")
        } else {
            x.append("  <cpu mode='custom' match='exact'>")
            x.append("    <model fallback='forbid'>\(plan.cpuModel.xmlEscaped)</model>")
        }
        x.append("    \(topology)")
        x.append("  </cpu>")
        x.append("  <clock offset='\(plan.clock.rawValue)'/>")
        x.append("  <devices>")
        var names: [String: Int] = [:]
        func target(_ bus: String) -> String {
            let prefix = bus == "ide" ? "hd" : (bus == "virtio" ? "vd" : "sd")
            let n = names[prefix, default: 0]
            names[prefix] = n + 1
            return prefix + Self.letters(n)
        }
        if plan.disks.contains(where: { $0.bus == .virtioSCSI }) { x.append("    <controller type='scsi' index='0' model='virtio-scsi'/>") }
        if plan.disks.contains(where: { $0.bus == .sata }) { x.append("    <controller type='sata' index='0'/>") }
        for disk in plan.disks {
            let bus = disk.bus == .virtioSCSI ? "scsi" : disk.bus.rawValue
            let block = disk.path.hasPrefix("/dev/")
            x.append("    <disk type='\(block ? "block" : "file")' device='disk'>")
            x.append("      <driver name='qemu' type='\(disk.format.xmlEscaped)'/>")
            x.append("      <source \(block ? "dev" : "file")='\(disk.path.xmlEscaped)'/>")
            x.append("      <target dev='\(target(bus))' bus='\(bus)'/>")
            x.append("      <boot order='\(disk.index + 1)'/>")
            x.append("    </disk>")
        }
        // CD-ROMs: IDE on i440FX, SATA on q35 (which has no IDE).
        let cdBus = plan.machine == "q35" ? "sata" : "ide"
        for _ in 0..<plan.cdroms {
            x.append("    <disk type='file' device='cdrom'>")
            x.append("      <target dev='\(target(cdBus))' bus='\(cdBus)'/>")
            x.append("      <readonly/>")
            x.append("    </disk>")
        }
        for nic in plan.nics {
            if let bridge = o.bridge {
                x.append("    <interface type='bridge'>")
                x.append("      <source bridge='\(bridge.xmlEscaped)'/>")
            } else {
                x.append("    <interface type='network'>")
                x.append("      <source network='default'/>")
            }
            if let mac = nic.mac { x.append("      <mac address='\(mac)'/>") }
            x.append("      <model type='\(nic.model.rawValue)'/>")
            x.append("    </interface>")
        }
        if plan.windows { x.append("    <input type='tablet' bus='usb'/>") }
        x.append("    <graphics type='vnc' port='-1' autoport='yes'/>")
        x.append("  </devices>")
        x.append("</domain>")
        return x.joined(separator: "\n") + "\n"
    }
}
