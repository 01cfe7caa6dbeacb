import FerryDisk
import FerryTestSupport
import FerryTransfer
import Foundation
import Testing

extension InProcessNetwork {
/// Delta sync into a block device (a loop device over a file that holds an older copy): the
/// device is updated in place, only the changed blocks and the held-back block 0 are sent,
/// and the device ends identical to the source. Needs root and losetup.
@Suite(.serialized) struct DeltaDeviceTests {
    @Test func aDeviceHoldingAnOlderCopyGetsOnlyTheChangedBlocks() async throws {
        try await Loopback.bounded(240, "aDeviceHoldingAnOlderCopyGetsOnlyTheChangedBlocks") {
            guard Tools.requireRoot("the loop device tests") else { return }
            guard Tools.require("losetup") else { return }
            let dir = try Loopback.temporaryDirectory()
            let size = (24 << 20) + 65536 * 2 + 4096  // a loop device holds whole 512-byte sectors
            var bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: size, seed: 151)
            try FileManager.default.copyItem(atPath: dir + "/src.img", toPath: dir + "/backing.img")
            let changed = DeltaSyncTests.change(&bytes, blocks: 5, seed: 152)
            _ = FileManager.default.createFile(atPath: dir + "/src.img", contents: Data(bytes))
            let attached = try Tools.run("losetup", ["-f", "--show", dir + "/backing.img"])
            guard attached.status == 0 else {
                Skip.because("losetup could not attach a loop device here: \(attached.stderr)")
                return
            }
            let loop = attached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            defer { _ = try? Tools.run("losetup", ["-d", loop]) }
            setenv("FERRY_STATE_DIR", dir + "/state", 1)
            defer { unsetenv("FERRY_STATE_DIR") }

            var config = Loopback.resumableReceiver(targets: [loop])
            config.sync = true
            let (receiver, port) = try await Loopback.startReceiver(config)
            var sc = Loopback.sendConfig(port: port, code: nil)
            sc.compress = .none
            sc.sync = true
            let sent = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
            _ = try await receiver.value
            let device = try FileDevice.openForReading(loop)
            defer { try? device.close() }
            #expect(try device.readBytes(at: 0, count: size) == bytes)
            // The changed blocks, and block 0, which a device target holds back until the commit.
            let expected = changed.union([0]).reduce(UInt64(0)) { $0 + UInt64(min(DeltaSyncTests.block, size - $1 * DeltaSyncTests.block)) }
            #expect(sent.disks.first?.dataBytes == expected, "\(String(describing: sent.disks.first?.dataBytes)) vs \(expected)")
        }
    }
}
}
