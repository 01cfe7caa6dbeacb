public import FerryDisk
import FerryBinary
import FerryNTFS
import FerryRegistry

/// Carries out a `FixPlan` on a writable disk: every write goes through an undo file first.
///
/// Order: the hives (their file's data, then NTFS's own metadata, as the NTFS writer orders
/// it), then the boot sectors; a cut anywhere leaves records that `UndoRestore` reverses,
/// and the planner on a rerun finds the edits still to make.
public enum FixApplier {
    public struct Options: Sendable {
        /// Write even though the volume is dirty, hibernated or its journal is open.
        public var force = false
        /// For the crash test: SIGKILL after this many writes.
        public var killAfterWrites: Int?
        /// For tests that compare two fixed disks: the hives' write time (a FILETIME) instead of now.
        public var timestamp: UInt64?
        public init(force: Bool = false, killAfterWrites: Int? = nil, timestamp: UInt64? = nil) {
            self.force = force
            self.killAfterWrites = killAfterWrites
            self.timestamp = timestamp
        }
    }

    public struct Result: Sendable, Equatable {
        public var writes: Int
        public var bytesWritten: UInt64
        public var hivesWritten: [HiveName]
        public var undoPath: String?
    }

    /// Why the plan must not be applied; empty when it may. Checked before the undo file exists.
    public static func refusals(_ plan: FixPlan, disk: any BlockDevice, options: Options) throws -> [String] {
        var out = plan.refused.map { "\($0.id.rawValue): " + $0.notes.joined(separator: "; ") }
        let volume = try NTFSVolume(device: disk, offset: plan.volumeOffset)
        let volumeRefusals = Array(Set(plan.volumeRefusals + (try volume.writeRefusals()))).sorted()
        if !options.force { out += volumeRefusals }
        // A hive's logs need no check of their own: Windows replays .LOG1/.LOG2 only into a dirty
        // hive (Suhanov, "Dirty state of a hive"), and 8.1+ marks the hive dirty before it keeps
        // unreconciled data in them. A dirty hive is refused by the planner and the editor.
        return out
    }

    public static func apply(_ plan: FixPlan, disk: any BlockDevice, undoPath: String, options: Options = Options()) throws -> Result {
        let refused = try refusals(plan, disk: disk, options: options)
        guard refused.isEmpty else {
            throw FixError(.refused, "\(disk.name): not changed: " + refused.joined(separator: "; "))
        }
        guard plan.changesSomething else { return Result(writes: 0, bytesWritten: 0, hivesWritten: [], undoPath: nil) }
        // Every hive edit is made in memory first: a hive the editor refuses stops the fix
        // before the undo file or the disk is touched.
        let root = String(plan.systemRoot.drop { $0 == "\\" })
        let reader = try NTFSVolume(device: disk, offset: plan.volumeOffset)
        var hives: [(HiveName, UInt64, [UInt8])] = []
        for hive in HiveName.allCases {
            let edits = plan.edits.filter { $0.hive == hive }
            guard !edits.isEmpty else { continue }
            let path = "/\(root)/System32/config/\(hive.rawValue)"
            guard let record = try reader.file(at: path), let stream = try reader.open(path) else {
                throw FixError(.noWindows, "\(disk.name): \(plan.systemRoot)\\System32\\config\\\(hive.rawValue) is gone")
            }
            let old = try stream.readAll(limit: FixPlanner.maxHiveBytes)
            var editor = try options.timestamp.map { try HiveEditor(bytes: old, timestamp: $0) } ?? HiveEditor(bytes: old)
            for edit in edits {
                switch edit.kind {
                case .createKey: try editor.createKey(edit.path)
                case .setValue(let name, let type, let data): try editor.setValue(at: edit.path, name: name, type: type, data: data)
                case .deleteValue(let name): try editor.deleteValue(at: edit.path, name: name)
                }
            }
            let new = editor.bytes()
            // The result must read back through ferry's own reader before it goes to disk.
            _ = try Hive(bytes: new).rootKey()
            hives.append((hive, record.number, new))
        }

        let undo = try UndoFile(creating: undoPath, for: disk)
        defer { undo.close() }
        let device = UndoRecordingDevice(disk, undo: undo, killAfterWrites: options.killAfterWrites)
        let volume = try NTFSVolume(device: device, offset: plan.volumeOffset)
        for (_, record, bytes) in hives {
            // Copy-on-write: a fix cut at any write leaves the hive wholly old or wholly new.
            _ = try volume.replaceContents(ofRecord: record, with: bytes, on: device, placement: .copyOnWrite)
        }
        for patch in plan.sectors {
            try patch.bytes.withUnsafeBytes { try device.write($0, at: patch.offset) }
        }
        try device.flush()
        let written = device.written
        return Result(writes: written.writes, bytesWritten: written.bytes, hivesWritten: hives.map(\.0), undoPath: undoPath)
    }
}
