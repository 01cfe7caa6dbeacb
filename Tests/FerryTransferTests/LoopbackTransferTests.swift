import FerryCopy
import FerryDisk
import FerryProtocol
import FerryTestSupport
import FerryTransfer
import NIOPosix
import Foundation
import Testing

extension InProcessNetwork {
@Suite(.serialized) struct LoopbackTransferTests {
    @Test func encryptedTransferIsByteIdenticalAndVerified() async throws {
        let dir = try Loopback.temporaryDirectory()
        let seed = UInt64.random(in: 0...UInt64.max)
        print("seed \(seed)")
        let size = 5 * 1024 * 1024 + 12345
        let bytes = try Loopback.makeDisk(at: dir + "/src.img", size: size, seed: seed)
        let code = PairingCode.random()
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.code = code
        let (receiver, port) = try await Loopback.startReceiver(rc)
        let source = try FileDevice.openForReading(dir + "/src.img")
        let sent = try await TransferSender.run(sources: [source], Loopback.sendConfig(port: port, code: code))
        let received = try await receiver.value
        #expect(Loopback.read(dir + "/dst.img") == bytes)
        let expected = try Loopback.digest(of: dir + "/src.img")
        #expect(sent.disks.first?.digest == expected)
        #expect(received.disks.first?.digest == expected)
        #expect(!FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-partial"))
        // Zero blocks did not cross the wire as bytes.
        let sentData = try #require(sent.disks.first?.dataBytes)
        #expect(sentData < UInt64(size))
    }

    /// `--digest sha256` gives the blkhash digest `ferry checksum --digest sha256` prints;
    /// xxh3 (the default when both ends have libxxhash) gives `ferry checksum`'s.
    @Test(arguments: [LeafHash.sha256, .xxh3])
    func digestKindIsNegotiatedAndMatchesChecksum(asked: LeafHash) async throws {
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeDisk(at: dir + "/src.img", size: 2 * 1024 * 1024 + 4097, seed: 77)
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.digest = asked
        let sent = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        let received = try await receiver.value
        let leaf: LeafHash = asked == .xxh3 ? Loopback.sessionLeaf : .sha256
        let expected = try #require(try Loopback.digest(of: dir + "/src.img", leaf: leaf))
        #expect(sent.disks.first?.digest == expected)
        #expect(received.disks.first?.digest == expected)
        #expect(expected.leaf == leaf)
        #expect(try Loopback.digest(of: dir + "/dst.img", leaf: leaf) == expected)
    }

    /// Nobody listening: a short wait for a receiver still starting, then a one-line
    /// network error (exit 69), not the ten minutes of --retry-for (the time limit
    /// bounds a regression; nothing is timed).
    @Test(.timeLimit(.minutes(1)))
    func nobodyListeningFailsSoonWithAPlainReason() async throws {
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeDisk(at: dir + "/src.img", size: 65536, seed: 5)
        // A port that was just free: bind, learn it, close.
        let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(probe.localAddress?.port)
        try await probe.close()
        var sc = Loopback.sendConfig(port: port, code: PairingCode.random())
        sc.retryFor = 600
        sc.connectWait = 2
        do {
            _ = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
            Issue.record("a send with nobody listening succeeded")
        } catch let error as TransferError {
            #expect(error.kind == .network)
            #expect(error.message.contains("connection refused"), "\(error.message)")
            #expect(!error.message.contains("SingleConnectionFailure"))
        }
    }

    @Test func insecureTransferOfTwoDisks() async throws {
        let dir = try Loopback.temporaryDirectory()
        let a = try Loopback.makeDisk(at: dir + "/a.img", size: 3 * 65536, seed: 1)
        let b = try Loopback.makeDisk(at: dir + "/b.img", size: 2 * 1024 * 1024 + 512, seed: 2)
        var rc = ReceiveConfiguration(targets: [dir + "/a2.img", dir + "/b2.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        let sources: [any BlockDevice] = [try FileDevice.openForReading(dir + "/a.img"), try FileDevice.openForReading(dir + "/b.img")]
        _ = try await TransferSender.run(sources: sources, Loopback.sendConfig(port: port, code: nil))
        _ = try await receiver.value
        #expect(Loopback.read(dir + "/a2.img") == a)
        #expect(Loopback.read(dir + "/b2.img") == b)
    }

    @Test func allZeroDiskSendsNoData() async throws {
        let dir = try Loopback.temporaryDirectory()
        let path = dir + "/zero.img"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 30)
        try handle.close()
        var rc = ReceiveConfiguration(targets: [dir + "/out.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        let sent = try await TransferSender.run(
            sources: [try FileDevice.openForReading(path)], Loopback.sendConfig(port: port, code: nil))
        _ = try await receiver.value
        #expect(sent.disks.first?.dataBytes == 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/out.img")
        #expect((attributes[.size] as? UInt64) == 1 << 30)
        #expect(sent.disks.first?.digest == (try Loopback.digest(of: path)))
    }

    @Test func wrongCodeLeavesTargetUntouched() async throws {
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeDisk(at: dir + "/src.img", size: 1 << 20, seed: 3)
        let original = try Loopback.makeDisk(at: dir + "/dst.img", size: 4096, seed: 4)
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.code = PairingCode.random()
        rc.overwrite = true
        rc.maxAuthFailures = 2
        let (receiver, port) = try await Loopback.startReceiver(rc)
        for _ in 0..<2 {
            do {
                _ = try await TransferSender.run(
                    sources: [try FileDevice.openForReading(dir + "/src.img")],
                    Loopback.sendConfig(port: port, code: PairingCode.random()))
                Issue.record("a sender with the wrong code succeeded")
            } catch let error as TransferError {
                #expect(error.kind == .authentication, "\(error.message)")
                #expect(error.kind == .authentication)
            }
        }
        // The receiver gives up after maxAuthFailures attempts.
        do {
            _ = try await receiver.value
            Issue.record("the receiver accepted a wrong code")
        } catch let error as TransferError {
            #expect(error.kind == .authentication)
        }
        #expect(Loopback.read(dir + "/dst.img") == original)
        #expect(!FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-partial"))
    }

    @Test func insecureSenderCannotReachSecureReceiver() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeDisk(at: dir + "/src.img", size: 1 << 20, seed: 5)
        let code = PairingCode.random()
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.code = code
        rc.maxAuthFailures = 1
        let (receiver, port) = try await Loopback.startReceiver(rc)
        await #expect(throws: TransferError.self) {
            _ = try await TransferSender.run(
                sources: [try FileDevice.openForReading(dir + "/src.img")], Loopback.sendConfig(port: port, code: nil))
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
        // Plain bytes prove nothing about the code: the receiver logged them and still
        // waits (one wrong code allowed), and the paired sender goes through.
        _ = try await TransferSender.run(
            sources: [try FileDevice.openForReading(dir + "/src.img")], Loopback.sendConfig(port: port, code: code))
        _ = try await receiver.value
        #expect(Loopback.read(dir + "/dst.img") == bytes)
    }

    @Test func pairingKeysAreDistinctPerRoleAndCode() throws {
        let code = PairingCode.random()
        let sender = try PairingIdentity(code: code, role: .sender)
        let receiver = try PairingIdentity(code: code, role: .receiver)
        #expect(sender.ownSPKI == receiver.expectedPeerSPKI)
        #expect(receiver.ownSPKI == sender.expectedPeerSPKI)
        #expect(sender.ownSPKI != receiver.ownSPKI)
        let other = try PairingIdentity(code: PairingCode.random(), role: .sender)
        #expect(other.ownSPKI != sender.ownSPKI)
        // Deterministic: the same code gives the same keys.
        #expect(try PairingIdentity(code: code, role: .sender).ownSPKI == sender.ownSPKI)
    }
}

@Suite struct PipeTransferTests {
    @Test func oneWayStreamThroughAPipeIsVerified() async throws {
        let dir = try Loopback.temporaryDirectory()
        let a = try Loopback.makeDisk(at: dir + "/a.img", size: 3 * 1024 * 1024 + 777, seed: 31)
        let b = try Loopback.makeDisk(at: dir + "/b.img", size: 1024 * 1024, seed: 32)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        var rc = ReceiveConfiguration(targets: [dir + "/a2.img", dir + "/b2.img"], listen: HostPort(host: "-", port: 0))
        rc.progress = .none
        let receiverConfig = rc
        let receiver = Task { try await onThread { try PipeTransfer.receive(from: readEnd, receiverConfig) } }
        var sc = SendConfiguration(destination: HostPort(host: "-", port: 0))
        sc.progress = .none
        let sources: [any BlockDevice] = [try FileDevice.openForReading(dir + "/a.img"), try FileDevice.openForReading(dir + "/b.img")]
        let senderConfig = sc
        let sent = try await onThread { try PipeTransfer.send(sources: sources, to: writeEnd, senderConfig) }
        close(writeEnd)
        let received = try await receiver.value
        close(readEnd)
        #expect(Loopback.read(dir + "/a2.img") == a)
        #expect(Loopback.read(dir + "/b2.img") == b)
        #expect(sent.disks.map(\.digest) == received.disks.map(\.digest))
        #expect(sent.disks.first?.digest == (try Loopback.digest(of: dir + "/a.img")))
    }

    @Test func truncatedStreamFailsAndLeavesNothing() async throws {
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeDisk(at: dir + "/a.img", size: 2 * 1024 * 1024, seed: 33)
        let streamPath = dir + "/stream"
        let out = open(streamPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var sc = SendConfiguration(destination: HostPort(host: "-", port: 0))
        sc.progress = .none
        _ = try PipeTransfer.send(sources: [try FileDevice.openForReading(dir + "/a.img")], to: out, sc)
        close(out)
        // Cut the stream in half, and separately flip one data byte.
        let whole = try #require(Loopback.read(streamPath))
        for variant in [Array(whole[0..<whole.count / 2]), { var v = whole; v[v.count / 2] ^= 1; return v }()] {
            _ = FileManager.default.createFile(atPath: streamPath, contents: Data(variant))
            let input = open(streamPath, O_RDONLY)
            var rc = ReceiveConfiguration(targets: [dir + "/out.img"], listen: HostPort(host: "-", port: 0))
            rc.progress = .none
            #expect(throws: TransferError.self) { _ = try PipeTransfer.receive(from: input, rc) }
            close(input)
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.img"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/.out.img.ferry-partial"))
        }
    }
}

@Suite struct RawTransferTests {
    @Test func rawStreamIsCopiedWithZeroElisionAndDigest() async throws {
        let dir = try Loopback.temporaryDirectory()
        let size = 4 * 1024 * 1024 + 4096
        let bytes = try Loopback.makeDisk(at: dir + "/src.img", size: size, seed: 41)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let receiver = Task {
            // Finished however the receiver ends, so a receiver that fails before it listens
            // fails the test instead of leaving it waiting for a port forever.
            defer { continuation.finish() }
            return try await onThread {
                try RawTransfer.receive(
                target: dir + "/dst.img", size: UInt64(size), listen: HostPort(host: "127.0.0.1", port: 0),
                overwrite: false, progress: .none
            ) { continuation.yield($0.port) }
            }
        }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        let source = try FileDevice.openForReading(dir + "/src.img")
        let sent = try await onThread {
            try RawTransfer.send(source: source, to: HostPort(host: "127.0.0.1", port: port), progress: .none)
        }
        let received = try await receiver.value
        #expect(Loopback.read(dir + "/dst.img") == bytes)
        #expect(received.disks.first?.digest == (try Loopback.digest(of: dir + "/src.img", leaf: .sha256)))
        #expect(sent.disks.first?.digest == received.disks.first?.digest)
        #expect((received.disks.first?.zeroBytes ?? 0) > 0)
    }

    @Test func shortRawStreamFails() async throws {
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeDisk(at: dir + "/src.img", size: 1024 * 1024, seed: 42)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let receiver = Task {
            // Finished however the receiver ends, so a receiver that fails before it listens
            // fails the test instead of leaving it waiting for a port forever.
            defer { continuation.finish() }
            return try await onThread {
                try RawTransfer.receive(
                target: dir + "/dst.img", size: 2 * 1024 * 1024, listen: HostPort(host: "127.0.0.1", port: 0),
                overwrite: false, progress: .none
            ) { continuation.yield($0.port) }
            }
        }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        let source = try FileDevice.openForReading(dir + "/src.img")
        _ = try await onThread {
            try RawTransfer.send(source: source, to: HostPort(host: "127.0.0.1", port: port), progress: .none)
        }
        await #expect(throws: TransferError.self) { _ = try await receiver.value }
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
    }
}
}
