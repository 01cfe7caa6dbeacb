import FerryTestSupport
import Foundation
import Testing

/// "The migrated disk still boots": a small disk that boots Linux under QEMU and prints
/// FERRY-BOOTED on its serial port (Tests/Fixtures/make-boot-disk.sh) goes through ferry — to
/// qcow2, over the network, out of a VMDK — and the result must boot and print the marker. The
/// MBR code, partition table, FAT volume, boot loader and kernel must all arrive intact.
///
/// Serialized: each boot is seconds of TCG emulation on a small machine; parallel boots only
/// slow each other towards the timeout.
@Suite(.serialized) struct BootTests {
    /// The boot disk, or nil after printing why the test is skipped (or recording why it failed).
    func bootDisk(_ variant: BootDiskFixture.Variant = .mbr1m) async -> String? {
        guard QEMUBoot.available else { return nil }
        switch await BootDiskFixture.shared.disk(variant) {
        case .built(let path):
            return path
        case .skip(let reason):
            Skip.because("boot disk unavailable: \(reason)")
            return nil
        case .failed(let reason):
            Issue.record("boot disk build failed: \(reason)")
            return nil
        }
    }

    func expectBoots(_ disk: String, format: String, interface: String, snapshot: Bool = false, in dir: TemporaryDirectory) throws {
        let outcome = try QEMUBoot.boot(disk, format: format, interface: interface, snapshot: snapshot, in: dir)
        #expect(outcome.sawMarker, "no \(QEMUBoot.marker) on the serial line of \(disk) (\(format), \(interface)); last lines:\n\(outcome.tail)")
        #expect(outcome.exitStatus == 0, "qemu did not end by the guest's power-off (\(outcome.exitStatus.map(String.init) ?? "killed"))")
    }

    func ferry(_ arguments: [String]) throws -> ToolResult {
        let started = Date()
        let result = try FerryExecutable.run(arguments)
        print("ferry \(arguments.joined(separator: " ")): exit \(result.status) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        return result
    }

    @Test func sourceDiskBootsOnIDE() async throws {
        guard let disk = await bootDisk() else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        try expectBoots(disk, format: "raw", interface: "ide", snapshot: true, in: dir)
    }

    @Test func lba63DiskBootsOnIDE() async throws {
        guard let disk = await bootDisk(.lba63) else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        try expectBoots(disk, format: "raw", interface: "ide", snapshot: true, in: dir)
    }

    @Test func qcow2CopyBootsOnVirtio() async throws {
        guard let disk = await bootDisk(), Tools.require("qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        let target = dir.file("disk.qcow2")
        let copy = try ferry(["copy", disk, target, "--progress", "none"])
        #expect(copy.status == 0, "ferry copy to qcow2 failed: \(copy.stderr)")
        guard copy.status == 0 else { return }
        let info = try Tools.run("qemu-img", ["info", "--output=json", target])
        #expect(info.stdout.contains("\"format\": \"qcow2\""), "ferry did not write qcow2: \(info.stdout)")
        let check = try Tools.run("qemu-img", ["check", target])
        #expect(check.status == 0, "qemu-img check: \(check.stdout)\(check.stderr)")
        let compare = try Tools.run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", disk, target])
        #expect(compare.status == 0, "qemu-img compare: \(compare.stdout)\(compare.stderr)")
        try expectBoots(target, format: "qcow2", interface: "virtio", in: dir)
    }

    @Test func lba63CopyToQcow2Boots() async throws {
        guard let disk = await bootDisk(.lba63) else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        let target = dir.file("lba63.qcow2")
        let copy = try ferry(["copy", disk, target, "--progress", "none"])
        #expect(copy.status == 0, "ferry copy to qcow2 failed: \(copy.stderr)")
        guard copy.status == 0 else { return }
        try expectBoots(target, format: "qcow2", interface: "ide", in: dir)
    }

    @Test func sentOverTheNetworkBoots() async throws {
        guard let disk = await bootDisk() else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        let target = dir.file("received.raw")
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")
        let code = String((0..<16).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
        let started = Date()
        // Port 0: the receiver binds a free port and prints it ("listening on 127.0.0.1:PORT").
        let receiverLog = dir.file("receive.log")
        let receiver = try BoundedProcess(
            FerryExecutable.path, ["receive", target, "--listen", "127.0.0.1:0", "--code", code, "--progress", "none"],
            stderr: receiverLog)
        defer { receiver.stop() }
        guard let port = waitForListeningPort(receiverLog, seconds: 30) else {
            Issue.record("ferry receive printed no listening port: \((try? String(contentsOfFile: receiverLog, encoding: .utf8)) ?? "")")
            return
        }
        let send = try ferry(["send", disk, "127.0.0.1:\(port)", "--code", code, "--progress", "none"])
        #expect(send.status == 0, "ferry send failed: \(send.stderr)")
        let receiveStatus = receiver.wait(seconds: 60)
        let receiveOutput = (try? String(contentsOfFile: receiverLog, encoding: .utf8)) ?? ""
        print("ferry send + receive: \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        #expect(receiveStatus == 0, "ferry receive: \(receiveStatus.map { "exit \($0)" } ?? "killed after 60 s"): \(receiveOutput)")
        #expect(receiveOutput.contains("verified"), "receiver did not report a verified disk: \(receiveOutput)")
        guard send.status == 0, receiveStatus == 0 else { return }
        try expectBoots(target, format: "raw", interface: "ide", in: dir)
    }

    @Test func streamOptimizedVMDKSourceBoots() async throws {
        guard let disk = await bootDisk(), Tools.require("qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        let vmdk = dir.file("disk.vmdk")
        let convert = try Tools.run("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", disk, vmdk])
        try #require(convert.status == 0, "qemu-img convert: \(convert.stderr)")
        let target = dir.file("from-vmdk.raw")
        let copy = try ferry(["copy", vmdk, target, "--progress", "none"])
        #expect(copy.status == 0, "ferry copy from streamOptimized VMDK failed: \(copy.stderr)")
        guard copy.status == 0 else { return }
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(contentsOf: URL(fileURLWithPath: disk)), "the copy differs from the source disk")
        try expectBoots(target, format: "raw", interface: "ide", in: dir)
    }

    /// QEMU boots the disk straight from `ferry serve` (its NBD client, virtio): every block the
    /// firmware, boot loader and kernel read comes through ferry's server.
    @Test func servedOverNBDBoots() async throws {
        guard let disk = await bootDisk() else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        let socket = dir.file("nbd.sock")
        let serve = try BackgroundProcess(FerryExecutable.path, ["serve", disk, "--nbd", "unix:\(socket)"], stderr: dir.file("serve.log"))
        // Stopped however the test ends; SIGKILL if SIGTERM does not end it.
        defer {
            serve.signal(SIGTERM)
            if serve.wait(seconds: 10) == nil { Issue.record("ferry serve outlived SIGTERM by 10 s") }
            serve.stop()
        }
        try #require(serve.waitForStderr("ferry: serving", seconds: 60), "ferry serve did not start: \(serve.stderr)")
        let export = URL(fileURLWithPath: disk).lastPathComponent
        try expectBoots("nbd+unix:///\(export)?socket=\(socket)", format: "raw", interface: "virtio", snapshot: true, in: dir)
    }

    /// The oracle itself can fail: the same disk with its MBR boot code wiped (what a copy that
    /// dropped or reordered block 0 would leave) must not print the marker.
    @Test func diskWithoutMBRCodeDoesNotBoot() async throws {
        guard let disk = await bootDisk() else { return }
        let dir = try TemporaryDirectory("ferry-boot")
        let broken = dir.file("no-mbr-code.raw")
        let copy = try ferry(["copy", disk, broken, "--progress", "none"])
        try #require(copy.status == 0, "ferry copy: \(copy.stderr)")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: broken))
        try handle.write(contentsOf: Data(count: 440))
        try handle.close()
        // SeaBIOS retries a failed boot only after 60 s; 20 s is ample to show no marker.
        let outcome = try QEMUBoot.boot(broken, format: "raw", interface: "ide", timeout: 20, in: dir)
        #expect(!outcome.sawMarker, "a disk without MBR code printed the marker:\n\(outcome.tail)")
    }

    /// Polls the receiver's stderr for "listening on HOST:PORT" and returns PORT.
    func waitForListeningPort(_ log: String, seconds: Double) -> Int? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                guard let range = line.range(of: "listening on ") else { continue }
                let address = line[range.upperBound...].trimmingCharacters(in: .whitespaces)
                if let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), port > 0 {
                    return port
                }
            }
            usleep(100_000)
        }
        return nil
    }
}
