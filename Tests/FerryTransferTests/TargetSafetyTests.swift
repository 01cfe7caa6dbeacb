import FerryCopy
import FerryDisk
import FerryProtocol
import FerryTestSupport
import FerryTransfer
import Foundation
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension InProcessNetwork {
/// Issue 9, items 3, 5, 9 and 14 on the receiving side: the commit order (no block 0
/// and no final name before the digests match), raw mode's length check, one writer
/// per target, and targets checked before listening.
@Suite(.serialized) struct TargetSafetyTests {
    let hostile = HostilePeerTests()
    var wrongFinish: Message { .finish(Finish(disk: 0, digest: Array(repeating: 0, count: 32))) }

    /// A 1 MiB backing file full of 0xAA on a loop device (the "old disk" a failed
    /// transfer must not leave looking like a new one).
    func oldDisk(_ dir: String) throws -> (String, String)? {
        let backing = dir + "/backing.img"
        _ = FileManager.default.createFile(atPath: backing, contents: Data(repeating: 0xAA, count: 1 << 20))
        guard let loop = try LoopDevice.attach(backing) else { return nil }
        return (backing, loop)
    }

    @Test func wrongDigestLeavesNoBlockZeroOnADevice() async throws {
        let dir = try Loopback.temporaryDirectory()
        guard let (_, loop) = try oldDisk(dir) else { return }
        defer { LoopDevice.detach(loop) }
        var rc = ReceiveConfiguration(targets: [loop], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        _ = try await HostilePeerTests.run(
            port: port, [HostilePeerTests.frame([hostile.hello, hostile.disk, hostile.data(at: 0, blocks: 4), wrongFinish])])
        do {
            _ = try await receiver.value
            Issue.record("the receiver committed a disk whose digest does not match")
        } catch let error as TransferError {
            #expect(error.kind == .verification, "\(error)")
        }
        // The sender's block 0 (0x5A) must not be there: the digests differed.
        #expect(try LoopDevice.firstBlock(loop).allSatisfy { $0 == 0 })
    }

    @Test func pipeWrongDigestLeavesNoBlockZeroOnADevice() async throws {
        let dir = try Loopback.temporaryDirectory()
        guard let (_, loop) = try oldDisk(dir) else { return }
        defer { LoopDevice.detach(loop) }
        let stream = HostilePeerTests.frame([hostile.hello, hostile.disk, hostile.data(at: 0, blocks: 4), wrongFinish])
        let result = try await Self.pipeReceive(stream, into: loop)
        #expect(result?.kind == .verification, "\(String(describing: result))")
        #expect(try LoopDevice.firstBlock(loop).allSatisfy { $0 == 0 })
    }

    /// `receive --stdin` whose stream stops half way (the ssh link died): an error,
    /// and nothing under the final name, no partial file.
    @Test func pipeThatEndsEarlyCommitsNothing() async throws {
        let dir = try Loopback.temporaryDirectory()
        let target = dir + "/piped.img"
        let stream = HostilePeerTests.frame([hostile.hello, hostile.disk, hostile.data(at: 0, blocks: 2)])
        let result = try await Self.pipeReceive(stream, into: target)
        #expect(result?.kind == .network, "\(String(describing: result))")
        expectNothingCommitted(target)
    }

    /// `receive --stdin` of `stream` into `target`: the error it ended with, or nil.
    static func pipeReceive(_ stream: ByteBuffer, into target: String) async throws -> TransferError? {
        var rc = ReceiveConfiguration(targets: [target], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.progress = .none
        let config = rc
        return try await onThread { () -> TransferError? in
            let (readEnd, _) = try Self.pipeFeeding(Array(stream.readableBytesView))
            defer { close(readEnd) }
            do {
                _ = try PipeTransfer.receive(from: readEnd, config)
                return nil
            } catch let error as TransferError {
                return error
            }
        }
    }

    /// A pipe whose write end a thread fills with `bytes` and closes.
    static func pipeFeeding(_ bytes: [UInt8]) throws -> (Int32, Thread) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EIO) }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let writer = Thread {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { write(writeEnd, $0.baseAddress! + done, $0.count - done) }
                if n <= 0 { break }
                done += n
            }
            close(writeEnd)
        }
        writer.start()
        return (readEnd, writer)
    }

    // MARK: raw mode (item 5)

    /// Runs `receive --raw --size 1M` into `target` and feeds it `count` bytes.
    func rawReceive(_ target: String, sending count: Int) async throws -> Result<TransferSummary, any Error> {
        let portBox = Mutex<Int?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let receiving = Task {
            try await onThread {
                try RawTransfer.receive(
                    target: target, size: 1 << 20, listen: HostPort(host: "127.0.0.1", port: 0), overwrite: false,
                    progress: .none
                ) { address in
                    portBox.withLock { $0 = address.port }
                    ready.signal()
                }
            }
        }
        let port = try await onThread { () -> Int in
            guard ready.wait(timeout: .now() + 60) == .success, let port = portBox.withLock({ $0 }) else {
                throw TransferError(.network, "the raw receiver did not start")
            }
            return port
        }
        var rng = SeededRandom(seed: 17)
        let bytes = rng.bytes(count)
        try await onThread { try Self.sendAndClose(bytes, port: port) }
        return await receiving.result
    }

    /// Connects to 127.0.0.1:`port`, sends `bytes` (without SIGPIPE: the receiver
    /// may close early), closes.
    static func sendAndClose(_ bytes: [UInt8], port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the receiver hung up
            done += n
        }
        _ = shutdown(fd, Int32(SHUT_WR))
        var sink = [UInt8](repeating: 0, count: 4096)
        while recv(fd, &sink, sink.count, 0) > 0 {}
    }

    func expectNothingCommitted(_ target: String) {
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(!FileManager.default.fileExists(atPath: LocalTarget.partialName(for: target)))
    }

    @Test func rawStreamLongerThanAnnouncedIsRefused() async throws {
        let dir = try Loopback.temporaryDirectory()
        let target = dir + "/raw.img"
        let result = try await rawReceive(target, sending: 2 << 20)
        guard case .failure(let error) = result else {
            Issue.record("a 2 MiB stream was accepted as a 1 MiB disk")
            return
        }
        #expect((error as? TransferError)?.kind == .protocolViolation, "\(error)")
        #expect("\(error)".contains("more than"))
        expectNothingCommitted(target)
    }

    @Test func rawStreamShorterThanAnnouncedIsRefused() async throws {
        let dir = try Loopback.temporaryDirectory()
        let target = dir + "/raw.img"
        let result = try await rawReceive(target, sending: 512 << 10)
        guard case .failure(let error) = result else {
            Issue.record("a 512 KiB stream was accepted as a 1 MiB disk")
            return
        }
        #expect((error as? TransferError)?.kind == .network, "\(error)")
        expectNothingCommitted(target)
    }

    @Test func rawStreamOfTheRightLengthIsReceivedButNotCalledVerified() async throws {
        let dir = try Loopback.temporaryDirectory()
        let target = dir + "/raw.img"
        let summary = try await rawReceive(target, sending: 1 << 20).get()
        var rng = SeededRandom(seed: 17)
        #expect(Loopback.read(target) == rng.bytes(1 << 20))
        #expect(summary.disks.map(\.name) == [target])
        #expect(summary.verification == .none)
    }

    // MARK: one writer per target, targets checked before listening (items 9, 14)

    /// `ferry receive ARGS` with a guard against a receiver that listens instead of
    /// refusing (today's bug): killed after 60 s, which the status then shows (124).
    func receiveProcess(_ arguments: String) throws -> ToolResult {
        try FerryExecutable.shell("timeout 60 \"$FERRY\" receive \(arguments) --listen 127.0.0.1:0 --insecure --progress none")
    }

    @Test func secondReceiverOfATargetIsRefusedBeforeListening() async throws {
        let dir = try Loopback.temporaryDirectory()
        let target = dir + "/one.img"
        var rc = ReceiveConfiguration(targets: [target], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (first, port) = try await Loopback.startReceiver(rc)
        let second = try receiveProcess("'\(target)'")
        #expect(second.status == 73, "\(second.stderr)")
        #expect(second.stderr.contains("another ferry"), "\(second.stderr)")
        // The first receiver still works: it receives a disk into its target.
        let source = dir + "/src.img"
        let bytes = try Loopback.makeDisk(at: source, size: 3 << 20, seed: 4)
        _ = try await TransferSender.run(
            sources: [try FileDevice.openForReading(source)], Loopback.sendConfig(port: port, code: nil))
        _ = try await first.value
        #expect(Loopback.read(target) == bytes)
        #expect(!FileManager.default.fileExists(atPath: TargetLock.lockName(for: target)))
    }

    @Test func duplicateTargetsAreRefusedBeforeListening() throws {
        let dir = try Loopback.temporaryDirectory()
        let same = try receiveProcess("'\(dir)/dup.img' '\(dir)/dup.img'")
        #expect(same.status == 64, "\(same.stderr)")
        #expect(same.stderr.contains("same file"), "\(same.stderr)")
        // Two names for one existing file (a symlink): the same inode.
        _ = FileManager.default.createFile(atPath: dir + "/real.img", contents: nil)
        try FileManager.default.createSymbolicLink(atPath: dir + "/alias.img", withDestinationPath: dir + "/real.img")
        let aliased = try receiveProcess("'\(dir)/real.img' '\(dir)/alias.img'")
        #expect(aliased.status == 64, "\(aliased.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/.dup.img.ferry-partial"))
    }

    @Test func badTargetsAreRefusedBeforeListening() throws {
        let dir = try Loopback.temporaryDirectory()
        let existing = dir + "/existing.img"
        _ = FileManager.default.createFile(atPath: existing, contents: Data("precious".utf8))
        let exists = try receiveProcess("'\(dir)/fine.img' '\(existing)'")
        #expect(exists.status == 73, "\(exists.stderr)")
        #expect(exists.stderr.contains("--overwrite"), "\(exists.stderr)")
        #expect(!exists.stderr.contains("listening"), "\(exists.stderr)")
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "precious")

        let directory = try receiveProcess("'\(dir)'")
        #expect(directory.status != 0 && directory.status != 124, "\(directory.stderr)")
        #expect(directory.stderr.contains("directory"), "\(directory.stderr)")

        let unwritable = try receiveProcess("'\(dir)/vm.vmdk'")
        #expect(unwritable.status != 0 && unwritable.status != 124, "\(unwritable.stderr)")
        #expect(!unwritable.stderr.contains("listening"), "\(unwritable.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/vm.vmdk"))
    }

    // MARK: receive writes the format the name asks for (item 7)

    @Test func receiveIntoQcow2WritesQcow2() async throws {
        let dir = try Loopback.temporaryDirectory()
        let source = dir + "/src.img"
        let target = dir + "/x.qcow2"
        // Sector-aligned but not block-aligned: a short last 64 KiB block (qemu sizes are whole sectors).
        _ = try Loopback.makeDisk(at: source, size: (5 << 20) + 12288, seed: 21)
        var rc = ReceiveConfiguration(targets: [target], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        _ = try await TransferSender.run(
            sources: [try FileDevice.openForReading(source)], Loopback.sendConfig(port: port, code: nil))
        _ = try await receiver.value
        #expect(Loopback.read(target).map { Array($0.prefix(4)) } == [0x51, 0x46, 0x49, 0xFB], "not a qcow2 header")
        // `ferry checksum` reads the image through its format: the same disk as the source.
        let theirs = try DiskChecksum.digest(of: source)
        #expect(try DiskChecksum.digest(of: target) == theirs)
        // The command prints its default digest (xxh3 where libxxhash loads), labelled with its kind.
        let printed = try DiskChecksum.digest(of: source, leaf: .preferred)
        let checksum = try FerryExecutable.run(["checksum", target])
        #expect(checksum.status == 0 && checksum.stdout.contains(printed.labelled), "\(checksum.stdout)\(checksum.stderr)")
        guard Tools.require("qemu-img", why: "qemu-img compare of a received qcow2") else { return }
        let compare = try Tools.run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", source, target])
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
    }
}
}
