import FerryTestSupport
import Foundation
import Testing

/// `ferry fix` on a block device (a loop device over the guest's raw disk): planned, written
/// through O_EXCL, and the same bytes as the fix of a raw file (cmp); --undo restores it.
@Suite struct FixBlockDeviceTests {
    @Test func aBlockDeviceIsFixedLikeARawFileAndUndone() throws {
        guard GuestTools.require("mkntfs", "ntfs-3g", "sfdisk", "cmp") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let image = try FixPlanTests.image(WindowsProfile.vmwareSCSI2003.tree(), in: dir, name: "device") else { return }
        let pristine = dir.appendingPathComponent("pristine.img").path
        try FixApplyTests.copy(image, pristine)
        let fixedFile = dir.appendingPathComponent("file.img").path
        try FixApplyTests.copy(image, fixedFile)
        #expect(try FixQCOW2Tests.ferryFrozen(["fix", fixedFile]).status == 0)
        guard let loop = try LoopDevice.attach(image) else { return }
        defer { LoopDevice.detach(loop) }
        let undo = dir.appendingPathComponent("device.undo").path
        let fix = try FixQCOW2Tests.ferryFrozen(["fix", loop, "--undo-file", undo])
        #expect(fix.status == 0, "\(fix.stderr)")
        #expect(fix.stdout.contains("boot-ide          blocker → ok"), "\(fix.stdout)")
        #expect(try FixApplyTests.cmp(loop, fixedFile), "the device's fix differs from the file's")
        let restored = try FerryExecutable.run(["fix", "--undo", undo, loop])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try FixApplyTests.cmp(loop, pristine))
    }
}
