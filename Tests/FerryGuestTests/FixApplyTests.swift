import FerryDisk
import FerryFix
import FerryGuest
import FerryTestSupport
import Foundation
import Testing

/// `ferry fix` writing for real, checked by the tools the world trusts: hivexregedit (the same
/// `.reg` merged by hivex gives the same registry, key for key), ntfsfix -n and ntfscat (the
/// volume is consistent and holds the new hive), cmp (the undo file restores every byte).
@Suite struct FixApplyTests {
    static let tools = ["hivexregedit", "mkntfs", "ntfs-3g", "ntfscat", "ntfsfix", "sfdisk"]
    static let hivePath = "WINDOWS/system32/config/SYSTEM"

    /// The NTFS volume of a mbr63 fixture (partition 1 at LBA 63), as its own file for the ntfs
    /// tools: exactly the partition, since ntfsfix looks for the backup boot sector at its end.
    static func volume(of image: String, in dir: URL, name: String) throws -> String {
        let out = dir.appendingPathComponent("\(name).vol").path
        let mbr = Array(try Data(contentsOf: URL(fileURLWithPath: image)).prefix(512))
        let sectors = mbr[458..<462].reversed().reduce(0) { $0 << 8 | Int($1) }
        let dd = try GuestTools.run("dd", ["if=\(image)", "of=\(out)", "bs=512", "skip=63", "count=\(sectors)", "status=none"])
        #expect(dd.status == 0, "dd: \(dd.stderr)")
        return out
    }

    static func ntfscat(_ volume: String, _ path: String) throws -> [UInt8] {
        let r = try GuestTools.run("ntfscat", [volume, path])
        #expect(r.status == 0, "ntfscat: \(r.stderr)")
        return Array(r.stdout)
    }

    /// `hivexregedit --export` of a whole hive: every key and value, in hivex's own order.
    static func export(_ hive: [UInt8], in dir: URL, name: String) throws -> String {
        let path = dir.appendingPathComponent("\(name).export.hive")
        try Data(hive).write(to: path)
        let r = try GuestTools.run("hivexregedit", ["--export", "--prefix", "HKEY_LOCAL_MACHINE\\SYSTEM", path.path, "\\"])
        #expect(r.status == 0, "hivexregedit --export: \(r.stderr)")
        return r.text
    }

    static func cmp(_ a: String, _ b: String) throws -> Bool { try GuestTools.run("cmp", ["-s", a, b]).status == 0 }

    static func copy(_ a: String, _ b: String) throws { try FileManager.default.copyItem(atPath: a, toPath: b) }

    @Test func fixMatchesHivexTurnsVerdictsGreenAndUndoes() throws {
        guard GuestTools.require("hivexregedit", "mkntfs", "ntfs-3g", "ntfscat", "ntfsfix", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = WindowsProfile.vmwareSCSI2003
        guard let image = try FixPlanTests.image(profile.tree(), in: dir, name: "disk") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try Self.copy(image, pristine)

        let (report, plan) = try FixPlanTests.plan(image)
        #expect(plan.changesSomething)
        let undoPath = dir.appendingPathComponent("disk.undo").path
        let disk = try FileDevice.openForWriting(image)
        let result = try FixApplier.apply(plan, disk: disk, undoPath: undoPath)
        try disk.close()
        #expect(result.hivesWritten == [.system])
        #expect(result.bytesWritten > 0)

        // Inspect reads the fix back: the verdicts it was for are green, and nothing is left to do.
        let (after, replan) = try FixPlanTests.plan(image)
        for id in ["boot-ide", "crash-visible"] {
            #expect(FixPlanTests.verdict(after, id)?.ok == true, "\(id): \(FixPlanTests.verdict(after, id)?.reason ?? "")")
        }
        #expect(FixPlanTests.verdict(report, "boot-ide")?.ok == false)
        for step in replan.steps { #expect(step.state != .apply, "\(step.id) not done after the fix") }

        // The oracle: the same .reg merged by hivex into the original hive exports identically.
        let volume = try Self.volume(of: image, in: dir, name: "fixed")
        let check = try GuestTools.run("ntfsfix", ["-n", volume])
        #expect(check.status == 0, "ntfsfix -n: \(check.stdout) \(check.stderr)")
        let written = try Self.ntfscat(volume, Self.hivePath)
        let merged = try FixPlanTests.hivexMerge(profile.systemHive(), reg: RegText.render(plan.edits), in: dir, name: "oracle")
        let ours = try Self.export(written, in: dir, name: "ferry")
        let theirs = try Self.export(merged, in: dir, name: "hivex")
        #expect(!ours.isEmpty && ours == theirs, "hivexregedit --export differs between ferry's hive and hivex's merge")

        // The undo file gives back the disk byte for byte.
        let restore = try FileDevice.openForWriting(image)
        _ = try UndoRestore.restore(restore, from: undoPath)
        try restore.close()
        #expect(try Self.cmp(image, pristine))
    }

    /// The command as a user runs it: --dry-run writes nothing, the fix prints the verdicts it
    /// turned green, a second run has nothing to change, --undo restores the disk.
    @Test func fixCommandDryRunFixAgainAndUndo() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let image = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: "cli") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try Self.copy(image, pristine)

        let dry = try FerryExecutable.run(["fix", image, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("mergeide        will change"))
        #expect(dry.stdout.contains("SYSTEM\\ControlSet001\\Services\\atapi: Start = 0 (REG_DWORD)"))
        #expect(try Self.cmp(image, pristine), "--dry-run wrote to the disk")
        #expect(!FileManager.default.fileExists(atPath: image + ".ferry-undo"))

        let fix = try FerryExecutable.run(["fix", image])
        #expect(fix.status == 0, "\(fix.stderr)")
        #expect(fix.stdout.contains("boot-ide          blocker → ok"), "\(fix.stdout)")
        #expect(fix.stdout.contains("undo with: ferry fix --undo \(image).ferry-undo \(image)"))

        let again = try FerryExecutable.run(["fix", image])
        #expect(again.status == 0)
        #expect(again.stdout.contains("nothing to change"), "\(again.stdout)")
        #expect(!again.stdout.contains("will change"))

        let undo = try FerryExecutable.run(["fix", "--undo", image + ".ferry-undo", image])
        #expect(undo.status == 0, "\(undo.stderr)")
        #expect(try Self.cmp(image, pristine))
    }

    /// `ferry copy --fix`: the target is read back, then fixed; the source is never written; a
    /// target the fix cannot edit in place is refused before anything is copied.
    @Test func copyWithFixFixesTheVerifiedTargetOnly() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let image = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: "source") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try Self.copy(image, pristine)
        let target = dir.appendingPathComponent("target.img").path
        let r = try FerryExecutable.run(["copy", image, target, "--fix"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("verified: the target reads back with the same digest"), "\(r.stdout)")
        #expect(r.stdout.contains("boot-ide          blocker → ok"), "\(r.stdout)")
        #expect(try Self.cmp(image, pristine), "the source changed")
        let (after, _) = try FixPlanTests.plan(target)
        #expect(FixPlanTests.verdict(after, "boot-ide")?.ok == true)

        let refused = try FerryExecutable.run(["copy", image, "null:", "--fix"])
        #expect(refused.status == 64, "\(refused.status) \(refused.stderr)")
        #expect(refused.stderr.contains("--fix needs a raw or qcow2 target"))
    }

    /// `ferry receive --fix`: the received disk is verified, then fixed; the sender's source is
    /// never written.
    @Test func receiveWithFixFixesTheVerifiedTarget() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let image = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: "source") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try Self.copy(image, pristine)
        let target = dir.appendingPathComponent("received.img").path
        let port = TestPorts.unassigned()
        let code = "7kqm-2xrt-9pfa-w3ne"
        let r = try FerryExecutable.shell("""
            cd '\(dir.path)'
            "$FERRY" receive '\(target)' --listen 127.0.0.1:\(port) --code \(code) --fix --progress none > recv.out 2> recv.err &
            pid=$!
            "$FERRY" send '\(image)' 127.0.0.1:\(port) --code \(code) --progress none --retry-for 60 > /dev/null 2> send.err
            echo "send=$?"
            wait $pid
            echo "receive=$?"
            """)
        let received = (try? String(contentsOfFile: dir.appendingPathComponent("recv.out").path, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: dir.appendingPathComponent("recv.err").path, encoding: .utf8)) ?? ""
        #expect(r.stdout.contains("send=0") && r.stdout.contains("receive=0"), "\(r.stdout) \(errors)")
        #expect(received.contains("boot-ide          blocker → ok"), "\(received)")
        #expect(try Self.cmp(image, pristine), "the source changed")
        let (after, _) = try FixPlanTests.plan(target)
        #expect(FixPlanTests.verdict(after, "boot-ide")?.ok == true)
    }

    /// kill -9 after every write of a fix in turn (issue 11): the hive on the disk is always one
    /// hivex exports, wholly the old one or wholly the new one (the hive is written
    /// copy-on-write); `--undo` restores the disk byte for byte; and a rerun completes the fix.
    @Test func aFixKilledAfterAnyWriteIsUndoneOrCompletedAndTheHiveAlwaysReads() throws {
        guard GuestTools.require("hivexregedit", "mkntfs", "ntfs-3g", "ntfscat", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let pristine = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: "pristine") else { return }
        let hiveOf = { (image: String, name: String) throws -> String in
            try Self.export(try Self.ntfscat(try Self.volume(of: image, in: dir, name: name), "/" + Self.hivePath), in: dir, name: name)
        }
        let before = try hiveOf(pristine, "before")
        let done = dir.appendingPathComponent("done.img").path
        try Self.copy(pristine, done)
        #expect(try FerryExecutable.run(["fix", done]).status == 0)
        let after = try hiveOf(done, "after")
        #expect(before != after)

        var kills = 0
        for k in 1...64 {
            let image = dir.appendingPathComponent("kill\(k).img").path
            try Self.copy(pristine, image)
            let killed = try FerryExecutable.shell("FERRY_TEST_FIX_KILL_AFTER_WRITES=\(k) \"$FERRY\" fix '\(image)'")
            if killed.status == 0 { break }  // the fix has fewer writes than k: every cut was tried
            #expect(killed.status == 137 || killed.status == 9, "kill after \(k): expected SIGKILL, got \(killed.status): \(killed.stderr)")
            kills += 1
            let hive = try hiveOf(image, "kill\(k)")
            #expect(hive == before || hive == after, "killed after write \(k): the hive is neither the old one nor the new one")

            let cut = image + ".cut"
            try Self.copy(image, cut)
            let undo = try FerryExecutable.run(["fix", "--undo", image + ".ferry-undo", image])
            #expect(undo.status == 0, "kill after \(k): --undo: \(undo.stderr)")
            #expect(try Self.cmp(image, pristine), "kill after \(k): --undo did not restore the disk")

            let rerun = try FerryExecutable.run(["fix", cut, "--undo-file", cut + ".undo2"])
            #expect(rerun.status == 0, "kill after \(k): rerun: \(rerun.status) \(rerun.stderr)")
            #expect(try hiveOf(cut, "rerun\(k)") == after, "kill after \(k): the rerun did not complete the fix")
            let (report, _) = try FixPlanTests.plan(cut)
            #expect(FixPlanTests.verdict(report, "boot-ide")?.ok == true)
            for path in [image, cut, cut + ".undo2", image + ".ferry-undo"] { try? FileManager.default.removeItem(atPath: path) }
        }
        #expect(kills >= 4, "the fix made only \(kills) writes before finishing")
    }

    /// Bad input: one line, exit 78, not one byte changed.
    @Test func unsafeGuestsAreRefusedAndLeftAsTheyWere() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var dirty = WindowsProfile.vmwareSCSI2003
        dirty.dirtySystemHive = true
        var hibernated = WindowsProfile.vmwareSCSI2003
        hibernated.hiberfil = "HIBR"
        var missing = WindowsProfile.vmwareSCSI2003
        missing.driverFiles.removeAll { $0 == "atapi.sys" }
        for (name, profile, expect) in [("dirty", dirty, "dirty"), ("hibernated", hibernated, "hibernat"), ("missing", missing, "atapi.sys")] {
            guard let image = try FixPlanTests.image(profile.tree(), in: dir, name: name) else { return }
            let before = dir.appendingPathComponent("\(name).orig").path
            try Self.copy(image, before)
            let r = try FerryExecutable.run(["fix", image])
            #expect(r.status == 78, "\(name): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(expect), "\(name): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(name): one line: \(r.stderr)")
            #expect(try Self.cmp(image, before), "\(name): the disk changed")
            #expect(!FileManager.default.fileExists(atPath: image + ".ferry-undo"), "\(name): an undo file was left")
        }
        let blank = dir.appendingPathComponent("blank.img").path
        #expect(FileManager.default.createFile(atPath: blank, contents: Data(count: 1 << 20)))
        let none = try FerryExecutable.run(["fix", blank])
        #expect(none.status == 78 && none.stderr.contains("no Windows"), "\(none.stderr)")
    }
}
