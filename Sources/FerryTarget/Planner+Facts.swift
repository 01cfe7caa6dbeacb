extension Planner {
    /// The family from the guest (inspect) first, then the .vmx's `guestOS` (a declaration,
    /// so the drivers it implies are a guess).
    static func family(machine: SourceMachine?, guest: GuestFacts?) -> (Family, String, Bool) {
        if let guest, guest.os == .windows {
            let v = guest.windowsVersion ?? ""
            let name = guest.productName ?? "Windows \(v)"
            switch v {
            case "5.0": return (.windows2000, "inspect: \(name) (version 5.0)", false)
            case "5.1", "5.2": return (.windowsXP2003, "inspect: \(name) (version \(v))", false)
            case "": return (.windowsModern, "inspect: Windows of unknown version", true)
            default: return (.windowsModern, "inspect: \(name) (version \(v))", false)
            }
        }
        if let guest, guest.os == .linux { return (.linux, "inspect: Linux file systems on the disk", false) }
        guard let os = machine?.guestOS?.lowercased() else { return (.unknown, "no guest facts and no guestOS in the .vmx", true) }
        let why = "guestOS = \"\(machine?.guestOS ?? "")\" in the .vmx (the disk was not inspected)"
        if os.hasPrefix("win2000") || os == "winnt" { return (.windows2000, why, true) }
        if os.hasPrefix("winxp") || os.hasPrefix("winnet") || os == "whistler" { return (.windowsXP2003, why, true) }
        if os.hasPrefix("win") || os.hasPrefix("longhorn") { return (.windowsModern, why, true) }
        let linux = ["linux", "ubuntu", "debian", "rhel", "centos", "sles", "suse", "fedora", "oracle", "almalinux", "rocky", "photon", "coreos", "amazonlinux", "mandriva", "turbolinux", "asianux", "opensuse", "mandrake", "redhat"]
        if linux.contains(where: { os.contains($0) }) { return (.linux, why, true) }
        return (.unknown, why + ": not a guest ferry knows", true)
    }

    /// The Windows version a `guestOS` names (open-vm-tools guest_os.h), for the OS type of the target.
    static func windowsVersion(guestOS: String) -> String? {
        let os = guestOS.lowercased()
        let table: [(String, String)] = [
            ("win2000", "5.0"), ("winxp", "5.1"), ("whistler", "5.1"), ("winnet", "5.2"), ("longhorn", "6.0"), ("winlonghorn", "6.0"),
            ("winvista", "6.0"), ("winserver2008", "6.0"), ("windows7", "6.1"), ("windows8", "6.2"), ("windows9", "10.0"),
            ("windows2019", "10.0"), ("windows2022", "10.0"), ("windows11", "10.0"), ("windows12", "10.0"),
        ]
        return table.first { os.hasPrefix($0.0) }?.1
    }

    /// `-64` (and the vSphere API's `64Guest`) mark a 64-bit guestOS.
    static func guestOSIs64(_ os: String) -> Bool {
        let lower = os.lowercased()
        return lower.hasSuffix("-64") || lower.hasSuffix("64guest") || lower.hasSuffix("_64")
    }

    static func verdictNote(_ guest: GuestFacts?, _ id: String) -> String {
        switch guest?.verdicts[id] {
        case true?: return "; verdict \(id): prepared"
        case false?: return "; verdict \(id): NOT prepared (see warnings)"
        case nil: return ""
        }
    }

    /// The .vmx's disks paired with the given ones: by file name first (`web.vmdk` ↔
    /// `/srv/web.vmdk` or `/srv/web.raw`), then in order.
    static func disks(machine: SourceMachine?, given: [GivenDisk], bus: TargetPlan.DiskBus, vmxDirectory: String?, warnings: inout [String]) -> [TargetPlan.Disk] {
        var unused = given
        var out: [TargetPlan.Disk] = []
        func stem(_ path: String) -> String {
            let base = path.split(separator: "/").last.map(String.init) ?? path
            return base.split(separator: ".").first.map { String($0).lowercased() } ?? base.lowercased()
        }
        for disk in machine?.disks ?? [] {
            let match = unused.firstIndex { stem($0.path) == stem(disk.fileName) } ?? (unused.isEmpty ? nil : unused.startIndex)
            if let match {
                let g = unused.remove(at: match)
                out.append(TargetPlan.Disk(index: out.count, path: g.path, format: g.format, bus: bus, size: g.size, source: disk.label, missing: false))
            } else {
                warnings.append("disk \(disk.label) (\(disk.fileName)) was not given: it is in the plan under its .vmx name; give it to complete the plan")
                let path = disk.fileName.hasPrefix("/") ? disk.fileName : (vmxDirectory.map { $0 + "/" } ?? "") + disk.fileName
                out.append(TargetPlan.Disk(index: out.count, path: path, format: "vmdk", bus: bus, size: nil, source: disk.label, missing: true))
            }
        }
        for g in unused {
            if machine != nil { warnings.append("disk \(g.path) is not in the .vmx; added after its disks") }
            out.append(TargetPlan.Disk(index: out.count, path: g.path, format: g.format, bus: bus, size: g.size, source: nil, missing: false))
        }
        if out.count > 4, bus == .ide {
            warnings.append("IDE has 4 slots (2 channels × 2): disks after the fourth need another bus; the CD-ROM takes a slot too")
        }
        return out
    }

    /// A DNS-safe instance name (Ganeti and Proxmox want one): lowercase letters, digits, dashes.
    static func hostName(_ raw: String) -> String {
        var out = ""
        for ch in raw.lowercased() {
            if ch.isASCII, ch.isLetter || ch.isNumber { out.append(ch) } else if !out.hasSuffix("-") { out.append("-") }
        }
        while out.hasSuffix("-") { out.removeLast() }
        while out.hasPrefix("-") { out.removeFirst() }
        return out.isEmpty ? "vm" : String(out.prefix(63))
    }
}
