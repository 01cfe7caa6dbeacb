import FerryCopy
import FerryDisk
import FerryFormats
import FerryGuest
import FerryProtocol
import FerryTransfer
import Foundation

extension DemoScript {
    /// Step 1: an ESXi-style disk: a descriptor and a `-flat.vmdk` holding the raw bytes.
    func makeSource(_ files: DemoFiles) throws {
        try SampleDisk.write(to: files.flat)
        try SampleDisk.descriptor(flatName: "win2003-flat.vmdk").write(toFile: files.descriptor, atomically: true, encoding: .utf8)
        say("Made \(files.descriptor) and \(files.flat), as ESXi keeps a thick disk on its datastore:")
        say("a \(ByteCount.format(SampleDisk.size)) disk with an MBR partition table (one active partition at sector 63,")
        say("as Windows 2003 lays it out) and \(ByteCount.format(SampleDisk.dataBytes)) of data.")
        say("Space actually allocated on the host: \(ByteCount.format(allocated(files.flat))). The rest was never written.")
    }

    /// Step 2: `ferry inspect` on the VMDK.
    func inspect(_ files: DemoFiles) throws {
        say("$ ferry inspect \(files.descriptor)")
        let disk = try DiskImage.openSource(files.descriptor)
        let report = try GuestInspector.inspect(disk)
        for line in report.summary.split(separator: "\n") { say("  " + line) }
        say("A whole disk with its boot code and the partition at sector 63: copy it whole, and old Windows")
        say("keeps the geometry its boot loader expects. (On a real guest, inspect also reads the registry")
        say("and tells whether Windows will boot on KVM's IDE or VirtIO controller.)")
    }

    /// Step 3: VMDK → qcow2 with `ferry copy`; returns the source digest.
    func convert(_ files: DemoFiles) throws -> DiskDigest {
        say("$ ferry copy \(files.descriptor) \(files.qcow2)")
        var config = CopyConfiguration(source: files.descriptor, target: files.qcow2)
        config.progress = .none
        config.verify = true
        let report = try DiskCopy.run(config, cancellation: Cancellation())
        let r = report.result
        say("Converted in \(String(format: "%.2f", r.seconds)) s: \(ByteCount.format(r.dataBytes)) of data written,")
        say("\(ByteCount.format(r.zeroBytes)) of empty space skipped without being read or written.")
        say("The qcow2 file takes \(ByteCount.format(allocated(files.qcow2))) and was re-read to verify it.")
        guard let digest = r.digest, report.verifiedDigest == digest else {
            throw DigestError("the converted image did not verify")
        }
        say("$ ferry checksum \(files.descriptor) \(files.qcow2)")
        say("\(digest.hex)  \(files.descriptor)")
        say("\(try DiskChecksum.digest(of: files.qcow2, cancellation: Cancellation()).hex)  \(files.qcow2)")
        say("The same digest for both: it depends on the disk's content, not on the format it is stored in.")
        return digest
    }

    /// Step 4: receive and send over loopback, with one wrong code first.
    func transfer(_ files: DemoFiles, expected: DiskDigest) async throws {
        let (announcements, continuation) = AsyncStream<ReceiverAnnouncement>.makeStream()
        var receive = ReceiveConfiguration(targets: [files.received], listen: HostPort(host: "127.0.0.1", port: 0))
        receive.progress = .none
        receive.announce = { continuation.yield($0) }
        let receiver = Task { try await TransferReceiver.run(receive) }
        var iterator = announcements.makeAsyncIterator()
        guard let announcement = await iterator.next(), let code = announcement.code else {
            receiver.cancel()
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
        say("  (\(leaf == .xxh3 ? "XXH3-128 block hashes inside the authenticated channel; `ferry checksum --digest xxh3` gives the same" : "SHA-256 block hashes")),")
        say("  and the receiver flushed the disk to stable storage before either side reported success.")
    }

    /// Step 5: one flipped byte changes the digest.
    func detectDamage(_ files: DemoFiles, expected: DiskDigest) throws {
        let damage = try FileDevice.openForWriting(files.received)
        let offset: UInt64 = (32 << 20) + 12345
        try [UInt8](repeating: 0xFF, count: 1).withUnsafeBytes { try damage.write($0, at: offset) }
        try damage.flush()
        try damage.close()
        let damaged = try DiskChecksum.digest(of: files.received, cancellation: Cancellation())
        say("Flipped one byte at offset \(offset) of \(files.received); its digest is now")
        say("\(damaged.hex)")
        guard damaged != expected else {
            throw VerificationError(expected: expected, actual: damaged, what: "the damaged copy (should differ)")
        }
        say("A single changed byte changes the digest: `ferry copy --verify` would have failed with exit code 3.")
    }
}
