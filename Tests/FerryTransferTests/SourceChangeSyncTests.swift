import FerryDisk
import FerryTransfer
import Foundation
import Testing

extension InProcessNetwork {
/// Issue 14: "a source changing during the final pass is detected as in the trust issue".
/// A delta pass reads its source twice over (the comparison, then the blocks that differ),
/// so a write between the two could slip by unseen; the watch still sees it. A source that
/// grows fails the pass; one written in place is sent with the crash-consistency warning.
@Suite(.serialized) struct SourceChangeSyncTests {
    /// The source and an older copy of it on the receiver (every 64th KiB block differs).
    static func disks(_ dir: String) throws -> String {
        let path = try SourceChangeTests.source(dir)
        var older = try #require(Loopback.read(path))
        for at in stride(from: 0, to: older.count, by: 64 << 10) { older[at] ^= 0xA5 }
        _ = FileManager.default.createFile(atPath: dir + "/dst.img", contents: Data(older))
        return path
    }

    @Test func aSourceThatGrowsDuringASyncPassFailsIt() async throws {
        let dir = try Loopback.temporaryDirectory()
        let path = try Self.disks(dir)
        let source = SourceChangeTests.ChangingSource(try FileDevice.openForReading(path), trigger: 2 << 20) {
            SourceChangeTests.write([1, 2, 3], to: path, at: 4 << 20)
        }
        defer { try? source.close() }
        let (sent, received) = try await SourceChangeTests.send(source, watch: path, dir: dir, sync: true)
        guard case .failure(let error as TransferError) = sent else {
            Issue.record("the sender did not notice the source grew during a sync pass: \(sent)")
            return
        }
        #expect(error.kind == .io)
        #expect(error.message.contains("changed size while it was sent"), "\(error)")
        if case .success = received { Issue.record("the receiver reported a pass whose source changed size as done") }
    }

    @Test func aSourceWrittenDuringASyncPassIsSentWithTheWarning() async throws {
        let dir = try Loopback.temporaryDirectory()
        let path = try Self.disks(dir)
        let source = SourceChangeTests.ChangingSource(try FileDevice.openForReading(path), trigger: 2 << 20) {
            SourceChangeTests.write([7, 7, 7], to: path, at: 100)
        }
        defer { try? source.close() }
        let (sent, received) = try await SourceChangeTests.send(source, watch: path, dir: dir, sync: true)
        let summary = try sent.get()
        _ = try received.get()
        #expect(summary.disks.first?.sourceChanged?.contains("was modified") == true, "\(summary.disks)")
        // What was verified is what the sender read and sent: the receiver's digest agrees.
        #expect(try received.get().disks.first?.digest == summary.disks.first?.digest)
    }
}
}
