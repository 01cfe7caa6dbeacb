public import FerryDisk
public import FerryGuest
import FerryNTFS
import FerryRegistry

/// Decides what `ferry fix` changes, from the disk alone and before any byte is written:
/// `inspect`'s report, the SYSTEM hive as it is, the NTFS boot sectors.
public enum FixPlanner {
    /// A hive larger than this is refused (Windows caps SYSTEM far below it).
    public static let maxHiveBytes = 512 << 20

    /// Plans `steps` (the defaults when nil) on `disk`. Throws `FixError.noWindows` when there
    /// is nothing to fix; a refused step is in the plan, not an error, so it can be printed.
    public static func plan(_ disk: any BlockDevice, report: InspectionReport, steps: [FixStepID]?) throws -> FixPlan {
        guard let windows = report.windows else {
            throw FixError(.noWindows, "\(disk.name): no Windows installation found (ferry inspect shows what is there); nothing to fix")
        }
        let volumeOffset = windows.partition == 0 ? 0 : report.partitions.first { $0.index == windows.partition }?.start
        guard let volumeOffset else {
            throw FixError(.noWindows, "\(disk.name): the partition holding Windows (\(windows.partition)) is not in the partition table")
        }
        let volume = try NTFSVolume(device: disk, offset: volumeOffset)
        let root = String(windows.systemRoot.drop { $0 == "\\" })
        guard let systemStream = try volume.open("/\(root)/System32/config/SYSTEM") else {
            throw FixError(.noWindows, "\(disk.name): no SYSTEM hive under \(windows.systemRoot)\\System32\\config")
        }
        let system: Hive
        do {
            system = try Hive(bytes: try systemStream.readAll(limit: maxHiveBytes))
            _ = try system.rootKey()
        } catch {
            throw FixError(.refused, "\(disk.name): the SYSTEM hive does not read (\(error)); if a ferry fix of this disk was interrupted, restore it first with ferry fix --undo UNDO-FILE \(disk.name). Nothing written")
        }
        guard !system.isDirty else {
            throw FixError(.refused, "\(disk.name): the SYSTEM hive is dirty (its sequence numbers differ or its checksum is wrong: SYSTEM.LOG holds newer changes); boot the guest once and shut it down cleanly, or copy it again from a cleanly shut down source. Nothing written")
        }
        // The set Windows boots first (inspect's choice and rule), then the others Select names.
        let controlSets = try ControlSets(system).named
        guard !controlSets.isEmpty else {
            throw FixError(.refused, "\(disk.name): the SYSTEM hive has no control set (Select names none and there is no ControlSet00N); nothing to fix")
        }
        let boot = try disk.readBytes(at: volumeOffset, count: 512)
        let bootSector = try NTFSBootSector(parsing: boot, offset: volumeOffset)
        let backupOffset = bootSector.totalSectors
            .multipliedReportingOverflow(by: UInt64(bootSector.bytesPerSector))
        var backup: (UInt64, [UInt8])?
        if !backupOffset.overflow, case let (at, o) = volumeOffset.addingReportingOverflow(backupOffset.partialValue), !o, at <= disk.size - 512 {
            backup = (at, try disk.readBytes(at: at, count: 512))
        }
        let selected = steps ?? FixStepID.defaults
        let context = GuestContext(
            report: report, windows: windows, system: system, controlSets: controlSets, diskSize: disk.size, volumeOffset: volumeOffset,
            bootSector: bootSector, bootSectorBytes: boot, backupOffset: backup?.0, backupBytes: backup?.1,
            explicitlyRequested: steps.map(Set.init) ?? [])
        var refusals: [String] = []
        if windows.hibernated { refusals.append("hiberfil.sys holds a hibernation image: Windows would resume over the changes") }
        if windows.volumeDirty { refusals.append("the NTFS volume is marked dirty (chkdsk pending)") }
        if windows.journal == "unclean" { refusals.append("the NTFS journal ($LogFile) was not closed cleanly") }
        return FixPlan(
            disk: disk.name, partition: windows.partition, volumeOffset: volumeOffset, systemRoot: windows.systemRoot,
            controlSets: controlSets, steps: try selected.sorted().map { try FixSteps.plan($0, context) }, volumeRefusals: refusals)
    }
}
