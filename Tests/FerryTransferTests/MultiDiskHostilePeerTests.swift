import FerryProtocol
import FerryTransfer
import Foundation
import NIOCore
import Testing

extension InProcessNetwork {
/// A hostile peer against a two-disk receiver, over a real socket: messages about
/// the wrong disk end the session with an error and leave no unfinished target.
@Suite(.serialized) struct MultiDiskHostilePeerTests {
    let size: UInt64 = 2 * 65536
    var hello: Message { .hello(Hello(capabilities: [], role: .sender)) }

    func disk(_ i: UInt32) -> Message {
        .disk(DiskDescription(index: i, count: 2, size: size, sectorSize: 512, name: "evil\(i)"))
    }

    func data(_ disk: UInt32, at offset: UInt64) -> Message {
        let payload = [UInt8](repeating: 0x5A, count: 65536)
        let leaf = payload.withUnsafeBytes { BlockHashes.leaf($0) }
        return .data(DataExtent(disk: disk, offset: offset, hashes: ByteBuffer(bytes: leaf), data: ByteBuffer(bytes: payload)))
    }

    func zeros(_ disk: UInt32) -> Message { .zero(ZeroExtent(disk: disk, offset: 0, length: size)) }

    /// Runs the attack; returns the directory and the error codes the receiver sent.
    func attack(_ messages: [Message]) async throws -> (dir: String, errors: [ProtocolError.Code]) {
        let dir = try Loopback.temporaryDirectory()
        var rc = ReceiveConfiguration(targets: [dir + "/a.img", dir + "/b.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        let replies = try await HostilePeerTests.run(port: port, [HostilePeerTests.frame(messages)])
        do {
            _ = try await receiver.value
            Issue.record("the receiver accepted a hostile peer")
        } catch let error as TransferError {
            #expect(error.kind != .network, "\(error)")
        }
        let errors = replies.compactMap { m -> ProtocolError.Code? in
            if case .error(let e) = m { return e.code } else { return nil }
        }
        return (dir, errors)
    }

    func leftovers(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func extentForADiskNeverDescribed() async throws {
        let (dir, errors) = try await attack([hello, disk(0), data(1, at: 0)])
        #expect(errors == [.protocolViolation])
        #expect(leftovers(dir).isEmpty, "\(leftovers(dir))")
    }

    @Test func diskDescribedTwice() async throws {
        let (dir, errors) = try await attack([hello, disk(0), disk(1), data(0, at: 0), disk(0)])
        #expect(errors == [.protocolViolation])
        #expect(leftovers(dir).isEmpty, "\(leftovers(dir))")
    }

    @Test func finishBeforeThatDiskIsComplete() async throws {
        let finish = Message.finish(Finish(disk: 1, digest: Array(repeating: 0, count: 32)))
        let (dir, errors) = try await attack([hello, disk(0), disk(1), zeros(0), data(1, at: 0), finish])
        #expect(errors == [.verification])
        #expect(leftovers(dir).isEmpty, "\(leftovers(dir))")
    }

    /// Disk 0 is sent whole and verified; then the peer sends more of it. The session
    /// fails, but disk 0 stays committed with its journal, for a rerun to prove.
    @Test func extentForADiskAlreadyFinished() async throws {
        let dir = try Loopback.temporaryDirectory()
        _ = FileManager.default.createFile(atPath: dir + "/zeros.img", contents: Data(count: Int(size)))
        // This peer offered no xxh3 in its hello: the session hashes blocks with SHA-256.
        let digest = try #require(try Loopback.digest(of: dir + "/zeros.img", leaf: .sha256))
        let finish = Message.finish(Finish(disk: 0, digest: digest.bytes))
        let (target, errors) = try await attack([hello, disk(0), disk(1), zeros(0), finish, zeros(0)])
        #expect(errors == [.protocolViolation])
        #expect(Loopback.read(target + "/a.img") == [UInt8](repeating: 0, count: Int(size)))
        #expect(leftovers(target) == [".a.img.ferry-journal", "a.img"])
    }
}
}
