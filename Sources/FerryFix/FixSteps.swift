import FerryGuest
import FerryNTFS
import FerryRegistry

/// What the steps need to know about the guest, read once by `FixPlanner`.
struct GuestContext {
    var report: InspectionReport
    var windows: WindowsReport
    /// The SYSTEM hive as it is now, to leave out edits that would store what is already there.
    var system: Hive
    var controlSets: [String]
    var diskSize: UInt64
    var volumeOffset: UInt64
    var bootSector: NTFSBootSector
    /// The NTFS boot sector and its backup (the volume's last sector), as read.
    var bootSectorBytes: [UInt8]
    var backupOffset: UInt64?
    var backupBytes: [UInt8]?
    var explicitlyRequested: Set<FixStepID>

    var version: Double { windows.version.flatMap(Double.init) ?? 0 }
    /// 2000/XP/2003 (NT 5.x): the CriticalDeviceDatabase era, the boot code that uses BPB geometry.
    var legacy: Bool { version > 0 && version < 6 }

    func driver(_ name: String) -> DriverReport? { windows.drivers.first { $0.name.lowercased() == name.lowercased() } }

    /// `edits` without the ones that change nothing in the hive as it is now. A new key comes
    /// after its missing parents, each created on its own: hivexregedit (and any reader of
    /// the plan as a `.reg` file) creates only the keys a file names.
    func changing(_ edits: [RegistryEdit]) throws -> [RegistryEdit] {
        var created: Set<String> = []
        // A value goes into an existing key, so a value's key is created first too.
        let expanded = edits.flatMap { edit -> [RegistryEdit] in
            guard !edit.path.isEmpty else { return [edit] }
            if case .deleteValue = edit.kind { return [edit] }
            let keys = (1...edit.path.count).map { RegistryEdit(edit.hive, Array(edit.path.prefix($0)), .createKey) }
            return edit.kind == .createKey ? keys : keys + [edit]
        }
        return try expanded.filter { edit in
            let path = edit.keyPath
            let key = try system.key(path)
            switch edit.kind {
            case .createKey:
                guard key == nil, !created.contains(path.lowercased()) else { return false }
                created.insert(path.lowercased())
                return true
            case .setValue(let name, let type, let data):
                guard let key, let vk = try system.value(name, of: key) else { return true }
                let stored = try system.data(of: vk)
                return vk.type != type || stored != data
            case .deleteValue(let name):
                guard let key else { return false }
                return try system.value(name, of: key) != nil
            }
        }
    }

    func plan(_ id: FixStepID, _ edits: [RegistryEdit], notes: [String] = []) throws -> StepPlan {
        let changes = try changing(edits)
        return StepPlan(id: id, state: changes.isEmpty ? .done : .apply, edits: changes, notes: notes)
    }
}

/// Each step's decision and edits (windows-and-targets §1.3, §2, §6).
enum FixSteps {
    static func plan(_ id: FixStepID, _ g: GuestContext) throws -> StepPlan {
        switch id {
        case .mergeide: return try mergeIDE(g)
        case .virtioStorage: return try virtioStorage(g)
        case .crashVisible: return try g.plan(id, g.controlSets.map { .dword(.system, [$0, "Control", "CrashControl"], "AutoReboot", 0) })
        case .ntfsGeometry: return ntfsGeometry(g)
        case .cpuDrivers: return try cpuDrivers(g)
        }
    }

    static func mergeIDE(_ g: GuestContext) throws -> StepPlan {
        if g.windows.driverDatabase {
            return StepPlan(id: .mergeide, state: .notApplicable,
                notes: ["Windows 8 or later loads its inbox IDE/SATA drivers through DriverDatabase; the CriticalDeviceDatabase is not used"])
        }
        let plan = try g.plan(.mergeide, g.controlSets.flatMap { MergeIDE.edits(controlSet: $0) })
        let missing = MergeIDE.requiredFiles.filter { file in
            g.driver(String(file.dropLast(4)))?.fileExists != true
        }
        guard missing.isEmpty || plan.state == .done else {
            return StepPlan(id: .mergeide, state: .refused, edits: plan.edits, notes: [
                "\(missing.joined(separator: ", ")) missing from \(g.windows.systemRoot)\\System32\\drivers: a boot-start service without its file stops with 0x7B too. "
                    + "Extract them from \(g.windows.systemRoot)\\Driver Cache\\i386\\driver.cab (or ServicePackFiles\\i386) on the source, e.g. `expand driver.cab /f:atapi.sys %SystemRoot%\\System32\\drivers`; ferry does not create files",
            ])
        }
        return plan
    }

    static let virtioDrivers: [(service: String, ids: [String])] = [
        ("viostor", ["PCI#VEN_1AF4&DEV_1001&REV_00", "PCI#VEN_1AF4&DEV_1042&REV_01"]),
        ("vioscsi", ["PCI#VEN_1AF4&DEV_1004&REV_00", "PCI#VEN_1AF4&DEV_1048&REV_01"]),
    ]

    static func virtioStorage(_ g: GuestContext) throws -> StepPlan {
        if g.windows.driverDatabase {
            return StepPlan(id: .virtioStorage, state: .notApplicable,
                notes: ["Windows 8 or later ignores the CriticalDeviceDatabase; install virtio-win in the guest (ferry does not write DriverDatabase entries)"])
        }
        let present = virtioDrivers.filter { g.driver($0.service)?.fileExists == true }
        guard !present.isEmpty else {
            let why = "neither viostor.sys nor vioscsi.sys is in \(g.windows.systemRoot)\\System32\\drivers: copy one from virtio-win (the xp or 2k3 folder of 0.1.173, the last with them) on the source, or boot on IDE (mergeide); ferry does not create files"
            return StepPlan(id: .virtioStorage, state: g.explicitlyRequested.contains(.virtioStorage) ? .refused : .notApplicable, notes: [why])
        }
        var edits: [RegistryEdit] = []
        for ccs in g.controlSets {
            for driver in present {
                for id in driver.ids {
                    let key = [ccs, "Control", "CriticalDeviceDatabase", id]
                    edits.append(RegistryEdit(.system, key, .createKey))
                    edits.append(.string(.system, key, "ClassGUID", "{4D36E97B-E325-11CE-BFC1-08002BE10318}"))
                    edits.append(.string(.system, key, "Service", driver.service))
                }
                let key = [ccs, "Services", driver.service]
                edits.append(RegistryEdit(.system, key, .createKey))
                edits.append(.dword(.system, key, "Type", 1))
                edits.append(.dword(.system, key, "Start", 0))
                edits.append(.string(.system, key, "Group", "SCSI miniport"))
                edits.append(.dword(.system, key, "ErrorControl", 1))
                edits.append(.expandString(.system, key, "ImagePath", "system32\\drivers\\\(driver.service).sys"))
            }
        }
        return try g.plan(.virtioStorage, edits)
    }

    static func cpuDrivers(_ g: GuestContext) throws -> StepPlan {
        let installed = ["intelppm", "amdppm"].filter { g.driver($0)?.installed == true }
        guard !installed.isEmpty else {
            return StepPlan(id: .cpuDrivers, state: .notApplicable, notes: ["no intelppm or amdppm service in the guest"])
        }
        return try g.plan(.cpuDrivers, g.controlSets.flatMap { ccs in installed.map { .dword(.system, [ccs, "Services", $0], "Start", 4) } })
    }

    /// virt-v2v's `fix_ntfs_heads` for NT 5.x, and the hidden sectors every NTFS boot code
    /// uses to find its volume. Both boot sectors (the backup is the volume's last sector).
    static func ntfsGeometry(_ g: GuestContext) -> StepPlan {
        var sector = g.bootSectorBytes
        var notes: [String] = []
        if g.legacy {
            let heads: UInt16 = g.diskSize < 2_114_445_312 ? 0x40 : (g.diskSize < 4_228_374_780 ? 0x80 : 0xFF)
            if g.bootSector.heads != heads {
                sector.replaceSubrange(0x1A..<0x1C, with: [UInt8(heads & 0xFF), UInt8(heads >> 8)])
                notes.append("heads \(g.bootSector.heads) → \(heads)")
            }
        }
        if let start = g.windows.partitionStartLBA, UInt64(g.bootSector.hiddenSectors) != start {
            guard start <= UInt64(UInt32.max) else {
                return StepPlan(id: .ntfsGeometry, state: .refused, notes: ["the partition starts at LBA \(start), past what the 32-bit hidden-sectors field holds"])
            }
            sector.replaceSubrange(0x1C..<0x20, with: RegistryData.dword(UInt32(start)))
            notes.append("hidden sectors \(g.bootSector.hiddenSectors) → \(start)")
        }
        guard sector != g.bootSectorBytes else { return StepPlan(id: .ntfsGeometry, state: .done) }
        var patches = [SectorPatch(offset: g.volumeOffset, bytes: sector, what: "NTFS boot sector")]
        if let offset = g.backupOffset, let backup = g.backupBytes {
            if backup == g.bootSectorBytes {
                patches.append(SectorPatch(offset: offset, bytes: sector, what: "NTFS backup boot sector"))
            } else {
                notes.append("the backup boot sector differs from the primary; left as it is")
            }
        }
        return StepPlan(id: .ntfsGeometry, state: .apply, sectors: patches, notes: notes)
    }
}
