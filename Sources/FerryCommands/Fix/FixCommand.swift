public import ArgumentParser
import FerryDisk
public import FerryFix
import FerryFormats
import FerryGuest
import Foundation

/// `ferry fix DISK`: makes a copied Windows guest bootable on KVM, offline, with an undo file.
public struct FixCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fix",
        abstract: "Fix a copied Windows guest offline so that it boots on KVM (MergeIDE and friends), with an undo file.",
        discussion: """
            Steps (--only picks some): \(FixStepID.allCases.map(\.rawValue).joined(separator: ", ")); \
            the default is every step but cpu-drivers. Prints the plan (every registry value and sector it will change), \
            writes it through an undo file (every original byte saved and synced before it is overwritten), reads the disk \
            back and prints the verdicts of ferry inspect before and after. Writes raw disk files, block devices \
            (opened exclusively: never a mounted one) and qcow2 images (new clusters appended, qemu-img check clean; a \
            backing file is read, never written); never a source. `--undo FILE` puts every byte back.

            Example: see what the fix would change on a copied Windows 2003 disk, then run it without --dry-run:
              ferry fix win2003.img --dry-run
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "The copied disk: a raw image file, a qcow2 image or a block device.")
    public var disk: String

    @Option(name: .customLong("only"), parsing: .upToNextOption, help: "Run only these steps.")
    public var only: [FixStepID] = []

    @Flag(help: "Print the plan and change nothing.")
    public var dryRun = false

    @Option(help: "Where to write the undo file (default: DISK.ferry-undo beside a file, /var/lib/ferry/undo/NAME.ferry-undo for a device).")
    public var undoFile: String?

    @Option(help: ArgumentHelp("Restore the disk from this undo file instead of fixing it.", valueName: "UNDO-FILE"))
    public var undo: String?

    @Flag(help: "Write even though the NTFS volume is dirty, hibernated or its journal open (never for a dirty hive).")
    public var force = false

    @Flag(help: "Print the plan and the result as JSON.")
    public var json = false

    public init() {}

    public func run() throws {
        if DiskSchemes.uriScheme(of: disk) != nil && (!dryRun || undo != nil) {
            throw ValidationError(Self.uriRefusal(disk))
        }
        if let undo {
            let lock = try TargetLock.acquire(disk)
            defer { lock.release() }
            let (device, _) = try DiskImage.openForUpdate(disk)
            defer { try? device.close() }
            let result = try UndoRestore.restore(device, from: undo, force: force)
            print("ferry fix: restored \(result.records) ranges (\(result.bytes) bytes) of \(disk) from \(undo)")
            return
        }
        let (report, plan, format) = try Self.plan(disk, steps: only.isEmpty ? nil : only)
        if json && dryRun {
            print(try Self.encode(FixReport(plan: plan, before: report.verdicts, after: nil, result: nil)))
            return
        }
        if !json { print(FixOutput.plan(plan, report: report)) }
        if dryRun {
            if !json { print(plan.changesSomething ? "ferry fix: dry run; nothing written" : "ferry fix: nothing to change") }
            return
        }
        guard plan.changesSomething || !plan.refused.isEmpty else {
            if json {
                print(try Self.encode(FixReport(plan: plan, before: report.verdicts, after: report.verdicts, result: nil)))
            } else {
                print("ferry fix: nothing to change")
            }
            return
        }
        let outcome = try Self.apply(plan, to: disk, format: format, undoFile: undoFile, force: force)
        if json {
            print(try Self.encode(FixReport(plan: plan, before: report.verdicts, after: outcome.after.verdicts, result: .init(outcome.result))))
        } else {
            print(FixOutput.result(outcome.result, plan: plan, disk: disk))
            if let note = outcome.note { print(note) }
            print(FixOutput.verdicts(before: report.verdicts, after: outcome.after.verdicts, steps: plan.steps.map(\.id)))
        }
        try outcome.check()
    }

    struct Outcome {
        var result: FixApplier.Result
        var after: InspectionReport
        var unstuck: [FixStepID]
        /// For a qcow2 overlay: the backing file, which the fix read but did not change.
        var backing: String?

        var note: String? {
            backing.map { "ferry fix: wrote the qcow2 overlay only; its backing file \($0) is unchanged" }
        }

        func check() throws {
            guard unstuck.isEmpty else { throw FixCommandError.didNotStick(unstuck.map(\.rawValue)) }
        }
    }

    /// Why `ferry fix` (and `--fix` of copy and receive) does not write a URI: the fix's undo
    /// file and its exclusive open are made for local files and devices.
    static func uriRefusal(_ uri: String) -> String {
        "ferry fix writes local files and block devices, not \(uri) (a remote disk); "
            + "fix the disk where it is a file or device, or run ferry fix \(uri) --dry-run to see the plan"
    }

    /// Applies `plan` to the disk at `path` (locked, opened exclusively), then reads it back:
    /// inspects it again and plans again, so a change that did not stick is reported.
    static func apply(_ plan: FixPlan, to path: String, format: ImageFormat, undoFile: String?, force: Bool) throws -> Outcome {
        guard DiskSchemes.uriScheme(of: path) == nil else { throw ValidationError(uriRefusal(path)) }
        let lock = try TargetLock.acquire(path)
        defer { lock.release() }
        let (device, _) = try DiskImage.openForUpdate(path, format: format)
        defer { try? device.close() }
        let undoPath = undoFile ?? Self.defaultUndoPath(for: path, isBlockDevice: (device as? FileDevice)?.kind == .blockDevice)
        let environment = ProcessInfo.processInfo.environment
        let kill = environment["FERRY_TEST_FIX_KILL_AFTER_WRITES"].flatMap(Int.init)
        let timestamp = environment["FERRY_TEST_FIX_TIMESTAMP"].flatMap(UInt64.init)
        let result = try FixApplier.apply(
            plan, disk: device, undoPath: undoPath, options: .init(force: force, killAfterWrites: kill, timestamp: timestamp))
        let after = try GuestInspector.inspect(device)
        let replan = try FixPlanner.plan(device, report: after, steps: plan.steps.map(\.id))
        return Outcome(result: result, after: after, unstuck: replan.steps.filter { $0.state == .apply }.map(\.id),
                       backing: DiskImage.backingFile(ofUpdated: device))
    }

    /// `ferry copy --fix` and `ferry receive --fix`: the default steps on a target just written
    /// and verified. Returns what to print.
    static func fixTarget(_ path: String) throws -> String {
        let (report, plan, format) = try Self.plan(path, steps: nil)
        var lines = [FixOutput.plan(plan, report: report)]
        guard plan.changesSomething || !plan.refused.isEmpty else { return (lines + ["ferry fix: nothing to change"]).joined(separator: "\n") }
        let outcome = try Self.apply(plan, to: path, format: format, undoFile: nil, force: false)
        lines.append(FixOutput.result(outcome.result, plan: plan, disk: path))
        if let note = outcome.note { lines.append(note) }
        lines.append(FixOutput.verdicts(before: report.verdicts, after: outcome.after.verdicts, steps: plan.steps.map(\.id)))
        try outcome.check()
        return lines.joined(separator: "\n")
    }

    /// Inspects the disk read-only and plans the fix; also returns the format the disk was read
    /// as, which `apply` writes it as.
    static func plan(_ path: String, steps: [FixStepID]?) throws -> (InspectionReport, FixPlan, ImageFormat) {
        let opened = try DiskImage.open(source: path, policy: SourcePolicy())
        defer { try? opened.disk.close() }
        let top = opened.chain.images.first
        let rawDisk = opened.chain.images.count == 1 && top?.format == .raw && opened.chain.warnings.isEmpty
        guard let top, rawDisk || top.format == .qcow2 else {
            throw FixError(.unsupported, "\(path) is \(opened.chain); ferry fix writes raw disk files, block devices and qcow2 images only: copy it to qcow2 or raw (ferry copy \(path) disk.qcow2), fix that, and copy it on (--format raw if the guest's own bytes look like an image)")
        }
        let report = try GuestInspector.inspect(opened.disk)
        return (report, try FixPlanner.plan(opened.disk, report: report, steps: steps), top.format)
    }

    static func defaultUndoPath(for disk: String, isBlockDevice: Bool) -> String {
        guard isBlockDevice else { return disk + ".ferry-undo" }
        let dir = (ProcessInfo.processInfo.environment["FERRY_STATE_DIR"] ?? "/var/lib/ferry") + "/undo"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/" + (disk.split(separator: "/").last.map(String.init) ?? "disk") + ".ferry-undo"
    }

    static func encode(_ report: FixReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}

extension FixStepID: ExpressibleByArgument {}

enum FixCommandError: Error, CustomStringConvertible {
    case didNotStick([String])
    var description: String {
        switch self {
        case .didNotStick(let steps):
            return "the disk was written but reading it back shows \(steps.joined(separator: ", ")) still to do; undo with the undo file and report this"
        }
    }
}

/// `ferry fix --json`.
struct FixReport: Encodable {
    struct Written: Encodable {
        var writes: Int
        var bytesWritten: UInt64
        var hives: [String]
        var undoFile: String?
        init(_ r: FixApplier.Result) {
            writes = r.writes
            bytesWritten = r.bytesWritten
            hives = r.hivesWritten.map(\.rawValue)
            undoFile = r.undoPath
        }
    }

    var plan: FixPlan
    var before: [Verdict]
    var after: [Verdict]?
    var result: Written?
}
