import FerryDisk
import FerryProtocol
import FerryTransfer
import Foundation
import Testing

extension InProcessNetwork {
/// A transfer cut off midway continues from the receiver's journal: unchanged
/// segments are proven by hash and not sent again; changed ones are resent.
@Suite(.serialized) struct ResumeTests {
    static let size = 12 * 1024 * 1024 + 65536 * 3

    func receiverConfig(_ dir: String, retry: Double = 0) -> ReceiveConfiguration {
        Loopback.resumableReceiver(targets: [dir + "/dst.img"], retry: retry)
    }

    /// Runs a first transfer that the sender's link drops after `dropAfter` bytes.
    func interruptedTransfer(_ dir: String) async throws {
        let (receiver, port) = try await Loopback.startReceiver(receiverConfig(dir))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.dropAfterBytes = 6 << 20
        sc.compress = .none
        sc.workers = 1
        do {
            _ = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
            Issue.record("the cut transfer succeeded")
        } catch let error as TransferError {
            #expect(error.kind == .network, "\(error)")
        }
        await #expect(throws: TransferError.self) { _ = try await receiver.value }
        #expect(FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-partial"))
        #expect(FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-journal"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
    }

    func finish(_ dir: String) async throws -> TransferSummary {
        let (receiver, port) = try await Loopback.startReceiver(receiverConfig(dir))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.compress = .none
        let sent = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        _ = try await receiver.value
        #expect(!FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-journal"))
        return sent
    }

    @Test func rerunContinuesWhereItStopped() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 21)
        try await interruptedTransfer(dir)
        let sent = try await finish(dir)
        #expect(Loopback.read(dir + "/dst.img") == bytes)
        let dataSent = try #require(sent.disks.first?.dataBytes)
        // At least some journaled megabytes were proven, not resent.
        #expect(dataSent < UInt64(Self.size) - (2 << 20), "sent \(dataSent) of \(Self.size)")
        #expect(sent.disks.first?.digest == (try Loopback.digest(of: dir + "/src.img")))
    }

    @Test func changedSourceIsDetectedAndResent() async throws {
        let dir = try Loopback.temporaryDirectory()
        var bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 22)
        try await interruptedTransfer(dir)
        // Change one byte in the first segment, which the journal holds.
        bytes[1000] ^= 0xFF
        _ = FileManager.default.createFile(atPath: dir + "/src.img", contents: Data(bytes))
        _ = try await finish(dir)
        #expect(Loopback.read(dir + "/dst.img") == bytes)
    }

    @Test func senderReconnectsByItself() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 23)
        let (receiver, port) = try await Loopback.startReceiver(receiverConfig(dir, retry: 90))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.dropAfterBytes = 6 << 20
        sc.retryFor = 90
        sc.compress = .none
        sc.workers = 1
        _ = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        _ = try await receiver.value
        #expect(Loopback.read(dir + "/dst.img") == bytes)
    }
}
}
