import FerryCopy
import FerryDisk
import FerryFormats
import FerryGuest
import FerryNTFS
import FerryProtocol
import FerryTarget
import FerryTransfer
import Foundation

extension DemoScript {
    /// Step 1: an ESXi-style VM: a .vmx, a descriptor and a `-flat.vmdk` holding the raw bytes.
    func makeSource(_ files: DemoFiles) throws {
        try SampleDisk.write(to: files.flat)
        try SampleDisk.descriptor(flatName: "win2003-flat.vmdk").write(toFile: files.descriptor, atomically: true, encoding: .utf8)
        try SampleDisk.vmx(descriptorName: "win2003.vmdk").write(toFile: files.vmx, atomically: true, encoding: .utf8)
        say("Made \(files.vmx), \(files.descriptor) and \(files.flat), as ESXi keeps a VM on its datastore:")
        say("a \(ByteCount.format(SampleDisk.size)) disk with an MBR partition table (one active partition at sector 63,")
        say("as Windows 2003 lays it out) and an NTFS volume holding Windows Server 2003 SP2 as ESXi ran it: booting")
        say("from the LSI Logic SCSI controller, with \(ByteCount.format(SampleDisk.fileBytes)) of files (hives, drivers, a file share).")
        say("Space actually allocated on the host: \(ByteCount.format(allocated(files.flat))). The rest was never written.")
    }

    /// Step 2: `ferry inspect` on the VMDK.
    func inspect(_ files: DemoFiles) throws {
        say("$ ferry inspect \(files.descriptor)")
        let disk = try DiskImage.openSource(files.descriptor)
        defer { try? disk.close() }
        let report = try GuestInspector.inspect(disk)
        for line in report.summary.split(separator: "\n") { say("  " + line) }
        guard let ide = report.verdicts.first(where: { $0.id == "boot-ide" }), !ide.ok else {
            throw DigestError("inspect did not find the 0x7B the sample guest is built to show")
        }
        say("This is the seed story's blue screen, found before a byte is copied: on KVM's IDE controller this")
        say("Windows stops with STOP 0x7B. Step 7 fixes it offline, in the copy; the source is never written.")
    }

    /// Step 3: VMDK → qcow2 with `ferry copy`; returns the source digest.
    func convert(_ files: DemoFiles) throws -> DiskDigest {
        say("$ ferry copy \(files.descriptor) \(files.qcow2)")
        var config = CopyConfiguration(source: files.descriptor, target: files.qcow2)
        config.progress = .none
        config.verify = true
        // The digest `ferry copy` and `ferry checksum` print by default.
        config.options.leaf = .preferred
        let report = try DiskCopy.run(config, cancellation: Cancellation())
        let r = report.result
        say("Converted in \(String(format: "%.2f", r.seconds)) s: \(ByteCount.format(r.dataBytes)) of data written,")
        say("\(ByteCount.format(r.zeroBytes)) of empty space skipped without being read or written.")
        say("The qcow2 file takes \(ByteCount.format(allocated(files.qcow2))) and was re-read to verify it.")
        guard let digest = r.digest, report.verifiedDigest == digest else {
            throw DigestError("the converted image did not verify")
        }
        say("$ ferry checksum \(files.descriptor) \(files.qcow2)")
        say("\(digest.labelled)  \(files.descriptor)")
        say("\(try DiskChecksum.digest(of: files.qcow2, leaf: digest.leaf, cancellation: Cancellation()).labelled)  \(files.qcow2)")
        say("The same digest for both: it depends on the disk's content, not on the format it is stored in.")
        return digest
    }

    /// Step 4: receive and send over loopback, with one wrong code first.
    func transfer(_ files: DemoFiles, expected: DiskDigest) async throws {
        let (announcements, continuation) = AsyncStream<ReceiverAnnouncement>.makeStream()
        var receive = ReceiveConfiguration(targets: [files.received], listen: HostPort(host: "127.0.0.1", port: 0))
        receive.progress = .none
        receive.announce = { continuation.yield($0) }
        let receiver = Task {
            // The stream ends however the receiver does: one that fails before it listens
            // ends the demo with its error instead of a wait for an announcement forever.
            defer { continuation.finish() }
            return try await TransferReceiver.run(receive)
        }
        var iterator = announcements.makeAsyncIterator()
        guard let announcement = await iterator.next(), let code = announcement.code else {
            receiver.cancel()
            _ = try await receiver.value
            throw DigestError("the receiver did not start")
        }
        let port = announcement.listen.port
        say("On the KVM side (standing in for the new guest's /dev/vda):")
        say("$ ferry receive \(files.received) --listen 127.0.0.1:\(port)")
        say("  pairing code: \(code)   (type it on the source; it works once)")

        say("Someone on the network tries a guessed code:")
        var wrong = SendConfiguration(destination: HostPort(host: "127.0.0.1", port: port))
        wrong.code = PairingCode.random()
        wrong.progress = .none
        do {
            _ = try await TransferSender.run(sources: [try DiskImage.openSource(files.qcow2)], wrong)
            throw DigestError("a wrong pairing code was accepted")
        } catch let error as TransferError where error.kind == .authentication {
            say("  refused: the TLS handshake failed, because the keys derived from the two codes differ.")
            say("  nothing was written: \(FileManager.default.fileExists(atPath: files.received) ? "(target exists!)" : "the target does not even exist yet").")
        }

        say("On the ESXi side (a rescue system reading the old disk):")
        say("$ ferry send \(files.qcow2) 127.0.0.1:\(port) --code \(code)")
        var send = SendConfiguration(destination: HostPort(host: "127.0.0.1", port: port))
        send.code = code
        send.progress = .none
        let sent = try await TransferSender.run(sources: [try DiskImage.openSource(files.qcow2)], send)
        let received = try await receiver.value
        continuation.finish()
        // The transfer hashes blocks with xxh3 when both ends have libxxhash: compare
        // with the source's digest of the same kind.
        let leaf = sent.disks.first?.digest.leaf ?? .sha256
        let same = leaf == expected.leaf
            ? expected : try DiskChecksum.digest(of: files.qcow2, leaf: leaf, cancellation: Cancellation())
        guard let disk = sent.disks.first, disk.digest == same, received.disks.first?.digest == same else {
            throw DigestError("the received disk's digest does not match the source")
        }
        say("  sent \(ByteCount.format(disk.size)) in \(String(format: "%.2f", sent.seconds)) s over TLS 1.3:")
        say("  \(ByteCount.format(disk.dataBytes)) of data crossed the wire, \(ByteCount.format(disk.zeroBytes)) of zeros as a few bytes of description.")
        say("  Every 64 KiB block was checked against its hash before it was written; both ends computed")
        say("  digest \(disk.digest.labelled)")
        say("  (\(leaf == .xxh3 ? "XXH3-128 block hashes inside the authenticated channel; `ferry checksum` gives the same" : "SHA-256 block hashes")),")
        say("  and the receiver flushed the disk to stable storage before either side reported success.")
    }

    /// Step 6: one flipped byte changes the digest; flipped back, the digest matches again.
    func detectDamage(_ files: DemoFiles, expected: DiskDigest) throws {
        let offset: UInt64 = 100  // in the MBR's boot code
        let damage = try FileDevice.openForWriting(files.received)
        defer { try? damage.close() }
        let original = try damage.readBytes(at: offset, count: 1)
        try [original[0] ^ 0xFF].withUnsafeBytes { try damage.write($0, at: offset) }
        try damage.flush()
        let damaged = try DiskChecksum.digest(of: files.received, leaf: expected.leaf, cancellation: Cancellation())
        say("Flipped one byte at offset \(offset) of \(files.received) (the boot code); its digest is now")
        say("\(damaged.labelled)")
        guard damaged != expected else {
            throw VerificationError(expected: expected, actual: damaged, what: "the damaged copy (should differ)")
        }
        try original.withUnsafeBytes { try damage.write($0, at: offset) }
        try damage.flush()
        guard try DiskChecksum.digest(of: files.received, leaf: expected.leaf, cancellation: Cancellation()) == expected else {
            throw DigestError("the repaired copy does not match the source again")
        }
        say("A single changed byte changes the digest: `ferry copy --verify` would have failed with exit code 3.")
        say("Put back, the copy matches the source again.")
    }

    /// Step 7: `ferry fix` on the received disk, then an independent reader checks the hive.
    func fix(_ files: DemoFiles) throws {
        say("$ ferry fix \(files.received)")
        // The plan lists every key and value; the demo shows each step's first few.
        var details = 0
        var hidden = 0
        func flushHidden() {
            if hidden > 0 { say("          … \(hidden) more (ferry fix --dry-run lists every one)") }
            hidden = 0
        }
        for line in try FixCommand.fixTarget(files.received).split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("      ") else {
                flushHidden()
                details = 0
                say("  " + line)
                continue
            }
            details += 1
            if details <= 3 { say("  " + line) } else { hidden += 1 }
        }
        flushHidden()
        let disk = try DiskImage.openSource(files.received)
        defer { try? disk.close() }
        let after = try GuestInspector.inspect(disk)
        guard after.verdicts.first(where: { $0.id == "boot-ide" })?.ok == true else {
            throw DigestError("after the fix, inspect still says the guest will not boot on IDE")
        }
        say("The registry edit went into the copy's SYSTEM hive inside its NTFS volume; \(files.received).ferry-undo")
        say("holds every original byte it replaced (`ferry fix --undo \(files.received).ferry-undo \(files.received)`).")
        try confirmWithHivex(disk)
    }

    /// Reads the fixed hive with hivexget (libhivex, which virt-v2v uses), when it is installed.
    func confirmWithHivex(_ disk: any BlockDevice) throws {
        let volume = try NTFSVolume(device: disk, offset: SampleDisk.partitionStart * 512)
        guard let stream = try volume.open(SampleGuest.systemHivePath) else { throw DigestError("the SYSTEM hive is gone") }
        let hive = try stream.readAll(limit: 64 << 20)
        let path = NSTemporaryDirectory() + "ferry-demo-SYSTEM-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(hive).write(to: URL(fileURLWithPath: path))
        let key = "\\\(SampleGuest.controlSet)\\Services\\atapi"
        guard let start = try? run("hivexget", [path, key, "Start"]) else {
            say("(hivexget is not installed here; `apt install libhivex-bin` to check the hive with it.")
            say(" ferry's tests check every fix with hivexsh and hivexregedit.)")
            return
        }
        say("$ hivexget SYSTEM '\(key)' Start     # the hive read back out of the fixed disk")
        say("  \(start)")
        guard start == "0" else { throw DigestError("hivexget reads atapi Start = \(start), not 0") }
        say("libhivex, the library virt-v2v uses, reads the edit: atapi now starts at boot.")
    }

    /// Runs `tool` and returns its trimmed standard output; nil when it is not installed or fails.
    func run(_ tool: String, _ arguments: [String]) throws -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        guard let executable = paths.map({ "\($0)/\(tool)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Step 8: `ferry plan` for Ganeti, from the .vmx and the fixed disk.
    func plan(_ files: DemoFiles) throws {
        say("$ ferry plan --vmx \(files.vmx) \(files.received) --target ganeti")
        let result = try PlanFrontEnd.plan(
            vmx: files.vmx, disks: [files.received], target: .ganeti, options: RenderOptions(), policy: SourcePolicy())
        for line in result.text.split(separator: "\n", omittingEmptySubsequences: false) { say("  " + line) }
    }
}
