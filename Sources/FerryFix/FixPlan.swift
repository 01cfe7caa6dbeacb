/// The fixes `ferry fix` knows, each a small named step with the inspect verdicts it turns green.
public enum FixStepID: String, Sendable, Codable, CaseIterable, Comparable {
    case mergeide
    case virtioStorage = "virtio-storage"
    case crashVisible = "crash-visible"
    case ntfsGeometry = "ntfs-geometry"
    case cpuDrivers = "cpu-drivers"

    /// Steps run when `--only` is not given. `cpu-drivers` is opt-in: it is needed only when
    /// the guest moves between CPU vendors, which the disk cannot tell.
    public static let defaults: [FixStepID] = [.mergeide, .virtioStorage, .crashVisible, .ntfsGeometry]

    /// The `ferry inspect` verdicts this step is for.
    public var verdicts: [String] {
        switch self {
        case .mergeide: return ["boot-ide"]
        case .virtioStorage: return ["boot-virtio-blk", "boot-virtio-scsi"]
        case .crashVisible: return ["crash-visible"]
        case .ntfsGeometry: return ["hidden-sectors", "ntfs-heads"]
        case .cpuDrivers: return ["intelppm"]
        }
    }

    public var summary: String {
        switch self {
        case .mergeide: return "MergeIDE (KB314082): IDE controllers in the CriticalDeviceDatabase, atapi/intelide/pciide boot-start"
        case .virtioStorage: return "viostor/vioscsi boot-start with CriticalDeviceDatabase entries (driver file already on the disk)"
        case .crashVisible: return "CrashControl AutoReboot=0: a STOP error stays on screen instead of a reboot loop"
        case .ntfsGeometry: return "NTFS boot sector heads and hidden sectors as QEMU's BIOS and the partition table need them"
        case .cpuDrivers: return "intelppm/amdppm disabled (Start=4) for a move between CPU vendors"
        }
    }

    public static func < (a: FixStepID, b: FixStepID) -> Bool {
        allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
    }
}

/// Bytes of one sector range a step rewrites outside any file (the NTFS boot sectors).
public struct SectorPatch: Sendable, Equatable, Codable {
    /// Byte offset on the disk.
    public var offset: UInt64
    public var bytes: [UInt8]
    public var what: String

    public init(offset: UInt64, bytes: [UInt8], what: String) {
        self.offset = offset
        self.bytes = bytes
        self.what = what
    }
}

/// What one step will do on this guest.
public struct StepPlan: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        /// It changes something.
        case apply
        /// The guest already has everything the step would write.
        case done
        /// The step does not apply to this guest (the note says why).
        case notApplicable = "not-applicable"
        /// The step is needed but ferry cannot do it safely; nothing is written (the note says why).
        case refused
    }

    public var id: FixStepID
    public var state: State
    /// Registry edits that change something (edits that would store what is already there are left out).
    public var edits: [RegistryEdit]
    public var sectors: [SectorPatch]
    public var notes: [String]

    public init(id: FixStepID, state: State, edits: [RegistryEdit] = [], sectors: [SectorPatch] = [], notes: [String] = []) {
        self.id = id
        self.state = state
        self.edits = edits
        self.sectors = sectors
        self.notes = notes
    }
}

/// Everything `ferry fix` will change on one disk, decided before any byte is written.
public struct FixPlan: Sendable, Codable, Equatable {
    public var disk: String
    /// The partition holding Windows (0 for a bare volume) and where its volume starts.
    public var partition: Int
    public var volumeOffset: UInt64
    public var systemRoot: String
    /// The control sets edited: every existing one `Select` names, the current one first.
    public var controlSets: [String]
    public var steps: [StepPlan]
    /// Reasons the volume must not be written (dirty, hibernated, $LogFile); `--force` overrides.
    public var volumeRefusals: [String]

    public var edits: [RegistryEdit] { steps.filter { $0.state == .apply }.flatMap(\.edits) }
    public var sectors: [SectorPatch] { steps.filter { $0.state == .apply }.flatMap(\.sectors) }
    public var refused: [StepPlan] { steps.filter { $0.state == .refused } }
    public var changesSomething: Bool { !edits.isEmpty || !sectors.isEmpty }
}
