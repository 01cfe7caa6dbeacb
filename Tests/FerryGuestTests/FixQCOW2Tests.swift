import FerryDisk
import FerryFix
import FerryGuest
import FerryTestSupport
import Foundation
import Testing

/// `ferry fix` on qcow2 images: the same fix applied to a raw copy and to a qcow2 copy of the
/// same guest gives disks `qemu-img compare` calls identical; `qemu-img check` finds no error
/// and no leak; hivex reads the edited hive out of the qcow2 as it merges the same `.reg`;
/// `--undo` gives back a disk identical to the original; a backing file is never written.
@Suite struct FixQCOW2Tests {

    static func qemuImg(_ arguments: [String]) throws -> GuestTools.Result {
        try GuestTools.run("qemu-img", arguments)
    }

    /// Runs ferry with the hives' write time frozen, so two fixes of the same guest write the same bytes.
    static func ferryFrozen(_ arguments: [String]) throws -> ToolResult {
        try FerryExecutable.shell("FERRY_TEST_FIX_TIMESTAMP=133000000000000000 \"$FERRY\" " + arguments.map { "'\($0)'" }.joined(separator: " "))
    }

    static func expectClean(_ image: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let check = try qemuImg(["check", "-f", "qcow2", image])
        #expect(check.status == 0, "qemu-img check: \(check.text) \(check.stderr)", sourceLocation: sourceLocation)
    }

    static func expectIdentical(_ qcow2: String, _ raw: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let compare = try qemuImg(["compare", "-f", "qcow2", "-F", "raw", qcow2, raw])
        #expect(compare.status == 0, "qemu-img compare: \(compare.text) \(compare.stderr)", sourceLocation: sourceLocation)
    }

    /// A Windows-2003-like guest as a raw disk, and the same disk converted to qcow2.
    static func guest(in dir: URL, name: String) throws -> (raw: String, qcow2: String)? {
        guard let raw = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: name) else { return nil }
        let qcow2 = dir.appendingPathComponent("\(name).qcow2").path
        let convert = try qemuImg(["convert", "-f", "raw", "-O", "qcow2", raw, qcow2])
        #expect(convert.status == 0, "qemu-img convert: \(convert.stderr)")
        return (raw, qcow2)
    }

    @Test func fixOnQCOW2EqualsFixOnRawMatchesHivexAndUndoes() throws {
        guard GuestTools.require("qemu-img", "hivexregedit", "mkntfs", "ntfs-3g", "ntfscat", "ntfsfix", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let (raw, qcow2) = try Self.guest(in: dir, name: "disk") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try FixApplyTests.copy(raw, pristine)
        let (_, plan) = try FixPlanTests.plan(raw)

        let fixRaw = try Self.ferryFrozen(["fix", raw])
        #expect(fixRaw.status == 0, "\(fixRaw.stderr)")
        let fix = try Self.ferryFrozen(["fix", qcow2])
        #expect(fix.status == 0, "\(fix.stderr)")
        #expect(fix.stdout.contains("boot-ide          blocker → ok"), "\(fix.stdout)")
        #expect(fix.stdout.contains("undo with: ferry fix --undo \(qcow2).ferry-undo \(qcow2)"), "\(fix.stdout)")
        try Self.expectClean(qcow2)
        try Self.expectIdentical(qcow2, raw)

        // hivex reads the hive ferry wrote into the qcow2 as it merges the same .reg itself.
        let flat = dir.appendingPathComponent("flat.img").path
        #expect(try Self.qemuImg(["convert", "-f", "qcow2", "-O", "raw", qcow2, flat]).status == 0)
        let volume = try FixApplyTests.volume(of: flat, in: dir, name: "fixed")
        let ntfsfix = try GuestTools.run("ntfsfix", ["-n", volume])
        #expect(ntfsfix.status == 0, "ntfsfix -n: \(ntfsfix.text) \(ntfsfix.stderr)")
        let written = try FixApplyTests.ntfscat(volume, FixApplyTests.hivePath)
        let merged = try FixPlanTests.hivexMerge(
            WindowsProfile.vmwareSCSI2003.systemHive(), reg: RegText.render(plan.edits), in: dir, name: "oracle")
        let ours = try FixApplyTests.export(written, in: dir, name: "ferry")
        let theirs = try FixApplyTests.export(merged, in: dir, name: "hivex")
        #expect(!ours.isEmpty && ours == theirs, "hivexregedit --export differs between the qcow2's hive and hivex's merge")

        let again = try FerryExecutable.run(["fix", qcow2])
        #expect(again.status == 0)
        #expect(again.stdout.contains("nothing to change"), "\(again.stdout)")

        let undo = try FerryExecutable.run(["fix", "--undo", qcow2 + ".ferry-undo", qcow2])
        #expect(undo.status == 0, "\(undo.stderr)")
        try Self.expectClean(qcow2)
        try Self.expectIdentical(qcow2, pristine)
    }

    /// `ferry copy --fix` to a .qcow2 target: written, verified, then fixed in place.
    @Test func copyWithFixFixesAQCOW2Target() throws {
        guard GuestTools.require("qemu-img", "mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let source = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: "source") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try FixApplyTests.copy(source, pristine)
        let target = dir.appendingPathComponent("target.qcow2").path
        let r = try Self.ferryFrozen(["copy", source, target, "--fix"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("verified: the target reads back with the same digest"), "\(r.stdout)")
        #expect(r.stdout.contains("boot-ide          blocker → ok"), "\(r.stdout)")
        #expect(try FixApplyTests.cmp(source, pristine), "the source changed")
        try Self.expectClean(target)
        let fixedRaw = dir.appendingPathComponent("fixed.img").path
        try FixApplyTests.copy(pristine, fixedRaw)
        #expect(try Self.ferryFrozen(["fix", fixedRaw]).status == 0)
        try Self.expectIdentical(target, fixedRaw)
    }

    /// An overlay is fixed and says so; its backing file is read and never written.
    @Test func fixingAnOverlayLeavesItsBackingFileAlone() throws {
        guard GuestTools.require("qemu-img", "mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let base = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: "base") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try FixApplyTests.copy(base, pristine)
        let overlay = dir.appendingPathComponent("overlay.qcow2").path
        let create = try Self.qemuImg(["create", "-q", "-f", "qcow2", "-b", "base.img", "-F", "raw", overlay])
        #expect(create.status == 0, "\(create.stderr)")
        let fix = try Self.ferryFrozen(["fix", overlay])
        #expect(fix.status == 0, "\(fix.stderr)")
        #expect(fix.stdout.contains("ferry fix: wrote the qcow2 overlay only; its backing file base.img is unchanged"), "\(fix.stdout)")
        #expect(fix.stdout.contains("boot-ide          blocker → ok"), "\(fix.stdout)")
        #expect(try FixApplyTests.cmp(base, pristine), "the backing file changed")
        try Self.expectClean(overlay)
        let fixedRaw = dir.appendingPathComponent("fixed.img").path
        try FixApplyTests.copy(pristine, fixedRaw)
        #expect(try Self.ferryFrozen(["fix", fixedRaw]).status == 0)
        try Self.expectIdentical(overlay, fixedRaw)
    }

    /// kill -9 after 1 and after 3 writes of a fix on a qcow2: the metadata was never flushed, so
    /// the image is consistent (check: no error; a leak at worst) and `--undo` gives back the
    /// original disk exactly.
    @Test(arguments: [1, 3])
    func aFixKilledMidwayLeavesAConsistentQCOW2ThatUndoRestores(_ writes: Int) throws {
        guard GuestTools.require("qemu-img", "mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let (raw, qcow2) = try Self.guest(in: dir, name: "kill") else { return }
        let killed = try FerryExecutable.shell("FERRY_TEST_FIX_KILL_AFTER_WRITES=\(writes) \"$FERRY\" fix '\(qcow2)'")
        #expect(killed.status == 137 || killed.status == 9, "expected SIGKILL, got \(killed.status): \(killed.stderr)")
        let check = try Self.qemuImg(["check", "-f", "qcow2", qcow2])
        #expect(check.status == 0 || check.status == 3, "qemu-img check after kill -9: \(check.text) \(check.stderr)")
        let undo = try FerryExecutable.run(["fix", "--undo", qcow2 + ".ferry-undo", qcow2])
        #expect(undo.status == 0, "\(undo.stderr)")
        let after = try Self.qemuImg(["check", "-f", "qcow2", qcow2])
        #expect(after.status == 0 || after.status == 3, "qemu-img check after --undo: \(after.text) \(after.stderr)")
        try Self.expectIdentical(qcow2, raw)
    }

    /// A qcow2 the updater must not write (here: marked dirty) is refused in one line, before
    /// the undo file or the image is touched.
    @Test func aDirtyQCOW2IsRefusedUntouched() throws {
        guard GuestTools.require("qemu-img", "mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let (_, qcow2) = try Self.guest(in: dir, name: "dirty") else { return }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: qcow2))
        try handle.seek(toOffset: 79)
        try handle.write(contentsOf: Data([1]))  // incompatible_features bit 0: dirty
        try handle.close()
        let before = dir.appendingPathComponent("before.qcow2").path
        try FixApplyTests.copy(qcow2, before)
        let r = try FerryExecutable.run(["fix", qcow2])
        #expect(r.status == 65, "\(r.status) \(r.stderr)")  // FerryExit.badData: damaged or unsupported input
        #expect(r.stderr.contains("marked dirty"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try FixApplyTests.cmp(qcow2, before), "a refused image changed")
        #expect(!FileManager.default.fileExists(atPath: qcow2 + ".ferry-undo"))
    }
}
