import FerryProtocol
import FerryTestSupport
import FerryTransfer
import Foundation
import NIOCore
import NIOPosix
import Testing

extension InProcessNetwork {
/// A test client that speaks the protocol badly on purpose (plain TCP, so the tests
/// reach the receiver's message handling without a code). Every case must end with
/// an error from the receiver and nothing written outside the disk.
@Suite(.serialized) struct HostilePeerTests {
    typealias Raw = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(_ port: Int) async throws -> Raw {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try Raw(wrappingChannelSynchronously: channel) }
            }
    }

    static func frame(_ messages: [Message]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for m in messages { m.write(to: &buffer) }
        return buffer
    }

    /// Sends `prelude` then `attack`, returns the receiver's messages until it closes.
    static func run(port: Int, _ bytes: [ByteBuffer], hangUp: Bool = false) async throws -> [Message] {
        let channel = try await connect(port)
        var replies: [Message] = []
        try await channel.executeThenClose { inbound, outbound in
            for b in bytes { try? await outbound.write(b) }
            var pending = ByteBuffer()
            do {
                for try await var chunk in inbound {
                    pending.writeBuffer(&chunk)
                    while let m = try MessageDecoder.next(from: &pending) {
                        replies.append(m)
                        // Hang up once the receiver has opened the target and said so.
                        if hangUp, case .ready = m { return }
                    }
                }
            } catch {}
        }
        return replies
    }

    let size: UInt64 = 4 * 65536
    var hello: Message { .hello(Hello(capabilities: [], role: .sender)) }
    var disk: Message { .disk(DiskDescription(index: 0, count: 1, size: size, sectorSize: 512, name: "evil")) }

    func data(at offset: UInt64, blocks: Int, corrupt: Bool = false) -> Message {
        let payload = [UInt8](repeating: 0x5A, count: blocks * 65536)
        var hashes = ByteBuffer()
        for _ in 0..<blocks {
            let leaf = payload.withUnsafeBytes { BlockHashes.leaf(UnsafeRawBufferPointer(rebasing: $0[0..<65536])) }
            hashes.writeBytes(corrupt ? leaf.map { $0 ^ 1 } : leaf)
        }
        return .data(DataExtent(disk: 0, offset: offset, hashes: hashes, data: ByteBuffer(bytes: payload)))
    }

    /// Runs one attack against a fresh receiver whose target already exists with
    /// known content (and --overwrite): the content must survive, and no partial stays.
    func attack(
        _ bytes: [ByteBuffer], expect kind: TransferError.Kind, code: ProtocolError.Code? = nil, hangUp: Bool = false,
        keepsPartialForResume: Bool = false
    ) async throws {
        let dir = try Loopback.temporaryDirectory()
        let original = try Loopback.makeDisk(at: dir + "/dst.img", size: 8192, seed: 9)
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        rc.overwrite = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        let replies = try await Self.run(port: port, bytes, hangUp: hangUp)
        do {
            _ = try await receiver.value
            Issue.record("the receiver accepted a hostile peer")
        } catch let error as TransferError {
            #expect(error.kind == kind, "\(error)")
        }
        if let code {
            let errors = replies.compactMap { m -> ProtocolError.Code? in
                if case .error(let e) = m { return e.code } else { return nil }
            }
            #expect(errors == [code], "replies: \(replies.map(\.kind))")
        }
        #expect(Loopback.read(dir + "/dst.img") == original)
        // A dropped link keeps the partial file and its journal for a resume; every
        // other failure removes them.
        #expect(FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-partial") == keepsPartialForResume)
        #expect(FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-journal") == keepsPartialForResume)
    }

    @Test func offsetPastTheEnd() async throws {
        try await attack([Self.frame([hello, disk, data(at: size, blocks: 1)])], expect: .protocolViolation, code: .outOfRange)
    }

    @Test func extentStraddlingTheEnd() async throws {
        try await attack([Self.frame([hello, disk, data(at: size - 65536, blocks: 2)])], expect: .protocolViolation, code: .outOfRange)
    }

    @Test func oversizeFrame() async throws {
        var evil = Self.frame([hello, disk])
        evil.writeInteger(UInt32(0xFFFF_FFF0), endianness: .big)
        evil.writeInteger(UInt8(0x10))
        try await attack([evil], expect: .protocolViolation, code: .oversizeFrame)
    }

    @Test func badBlockHash() async throws {
        try await attack([Self.frame([hello, disk, data(at: 0, blocks: 1, corrupt: true)])], expect: .verification, code: .verification)
    }

    @Test func sizeThatChanges() async throws {
        let bigger = Message.disk(DiskDescription(index: 0, count: 1, size: size * 2, sectorSize: 512, name: "evil"))
        try await attack([Self.frame([hello, disk, data(at: 0, blocks: 1), bigger])], expect: .protocolViolation, code: .outOfRange)
    }

    @Test func finishWithWrongDigest() async throws {
        let finish = Message.finish(Finish(disk: 0, digest: Array(repeating: 0, count: 32)))
        try await attack(
            [Self.frame([hello, disk, data(at: 0, blocks: 4), finish])], expect: .verification, code: .verification)
    }

    // Garbage instead of a hello is not an attack on the session but a port check or a
    // health check: the receiver logs it and keeps waiting
    // (PairingGateTests.garbageInsteadOfHelloIsIgnoredWhenInsecure).

    @Test func connectionDroppedMidDisk() async throws {
        try await attack(
            [Self.frame([hello, disk, data(at: 0, blocks: 1)])], expect: .network, hangUp: true, keepsPartialForResume: true)
    }
}

/// SHA-256 of a block, through the same leaf type the engine uses.
enum BlockHashes {
    static func leaf(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        FerryCopyLeaf.hash(bytes)
    }
}

}

extension InProcessNetwork.HostilePeerTests {
    @Test func compressedGarbage() async throws {
        guard (try? Codec.load(.gzip)) != nil else {
            Skip.because("zlib not installed")
            return
        }
        let good = data(at: 0, blocks: 1)
        guard case .data(let extent) = good else { return }
        let evil = Message.compressed(CompressedExtent(
            disk: 0, offset: 0, length: 65536, codec: .gzip, hashes: extent.hashes,
            compressed: ByteBuffer(bytes: Array(repeating: 0x42, count: 200))))
        try await attack([Self.frame([hello, disk, evil])], expect: .verification, code: .verification)
    }
}
