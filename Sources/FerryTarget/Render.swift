import FerryBinary
/// What the renderers need besides the plan: names on the target side.
public struct RenderOptions: Sendable, Equatable {
    /// The bridge every NIC joins (libvirt/QEMU/Proxmox bridge, Ganeti `link=`); nil: the target's default.
    public var bridge: String?
    /// QEMU: "kvm", or "tcg" (no KVM: then `-cpu host` becomes `-cpu max`).
    public var accelerator: String = "kvm"
    public var qemuBinary: String = "qemu-system-x86_64"
    /// OVMF for a BIOS-less boot: Debian's `ovmf` package paths.
    public var ovmf: String = "/usr/share/ovmf/OVMF.fd"
    public var ovmfSecureCode: String = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
    public var ovmfSecureVars: String = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    /// The VM's own copy of the secure-boot variables; nil: `NAME_VARS.fd` in the current directory.
    public var ovmfVarsCopy: String?
    /// Ganeti: the node and the OS definition (never run: `--no-install`).
    public var ganetiNode: String?
    public var ganetiOS: String = "noop"
    public var ganetiTemplate: String = "plain"
    /// Proxmox: the VM id and the storage the disks are imported into.
    public var proxmoxVMID: Int = 100
    public var proxmoxStorage: String = "local-lvm"
    /// Arguments appended to the QEMU command line (tests: `-display none -serial …`).
    public var qemuExtra: [String] = []

    public init(bridge: String? = nil) { self.bridge = bridge }
}

/// The targets ferry writes a configuration for.
public enum TargetKind: String, Sendable, CaseIterable, Codable {
    case ganeti, libvirt, proxmox, qemu

    /// The configuration for `plan` on this target: a shell script (Ganeti, Proxmox, QEMU)
    /// or a libvirt domain XML document.
    public func render(_ plan: TargetPlan, _ options: RenderOptions = RenderOptions()) -> String {
        switch self {
        case .ganeti: return GanetiRenderer.render(plan, options)
        case .libvirt: return LibvirtRenderer.render(plan, options)
        case .proxmox: return ProxmoxRenderer.render(plan, options)
        case .qemu: return QEMURenderer.commandLine(plan, options)
        }
    }

    /// What this target cannot give the plan, as warnings printed with it.
    public func limits(_ plan: TargetPlan) -> [String] {
        switch self {
        case .ganeti: return GanetiRenderer.limits(plan)
        case .libvirt, .qemu, .proxmox: return []
        }
    }
}

/// POSIX shell quoting for the command lines the renderers print.
enum Shell {
    static func quote(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0)) }
        if safe, !word.isEmpty { return word }
        return "'" + word.replacingEvery("'", as: "'\\''") + "'"
    }

    static func line(_ words: [String]) -> String { words.map(quote).joined(separator: " ") }
}

extension String {
    /// `a,b` → `a,,b`: a comma inside a QEMU option value.
    var qemuEscaped: String { replacingEvery(",", as: ",,") }

    /// Every `character` written as `replacement`: one pass, no regex machinery (the
    /// string-processing `replacing` costs the fuzz target most of its speed).
    func replacingEvery(_ character: Character, as replacement: String) -> String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for ch in self {
            if ch == character { out += replacement } else { out.append(ch) }
        }
        return out
    }

    /// Text for XML content or a quoted attribute (`XMLTree.escaped`).
    var xmlEscaped: String { XMLTree.escaped(self) }
}
