import FerryCopy
import FerryTestSupport
import Foundation
import Testing

extension ProcessTests {
    /// Issue 14: a sync pass's progress, on both ends, shows what was compared, what changed and
    /// what was sent. The target is an older copy with 3 of its 64 KiB blocks changed: the last JSON
    /// sample has compared the whole disk, found exactly those blocks changed, and sent about
    /// that much.
    @Test func syncPassProgressShowsComparedChangedSent() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        let size = 8 << 20
        let source = try Loopback.makeRandomDisk(at: dir + "/src.img", size: size, seed: 141)
        var older = source
        for block in [3, 40, 101] { older[block * (64 << 10) + 17] ^= 0x5A }
        _ = FileManager.default.createFile(atPath: dir + "/dst.img", contents: Data(older))
        let port = Self.freePort()
        let (sender, said, receiver, receiverSaid) = try await Self.runBoth(
            ferry,
            receive: ["receive", dir + "/dst.img", "--sync", "--listen", "127.0.0.1:\(port)", "--insecure", "--progress", "json"],
            send: ["send", dir + "/src.img", "127.0.0.1:\(port)", "--sync", "--insecure", "--progress", "json"])
        #expect(sender == 0, "\(said)")
        #expect(receiver == 0, "\(receiverSaid)")
        #expect(Loopback.read(dir + "/dst.img") == source)
        let last = try #require(said.split(separator: "\n").last { $0.hasPrefix("{") }, "\(said)")
        let sample = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(sample["comparedBytes"] as? Int == size, "\(last)")
        #expect(sample["changedBytes"] as? Int == 3 * (64 << 10), "\(last)")
        let wire = sample["wireBytes"] as? Int ?? 0
        #expect(wire >= 3 * (64 << 10) && wire < 4 * (64 << 10), "\(last)")
        // The receiver's progress says the same: it compared the whole disk, and wrote only what changed.
        let theirs = try #require(receiverSaid.split(separator: "\n").last { $0.hasPrefix("{") }, "\(receiverSaid)")
        let received = try #require(try JSONSerialization.jsonObject(with: Data(theirs.utf8)) as? [String: Any])
        #expect(received["comparedBytes"] as? Int == size, "\(theirs)")
        #expect(received["changedBytes"] as? Int == 3 * (64 << 10), "\(theirs)")
        // `ferry send --sync` hashes with keyed XXH3 when both ends have libxxhash (it used to
        // force SHA-256 whatever --digest said), and both ends print the same keyed digest.
        let keyed = #/digest (xxh3-keyed:[0-9a-f]{64})/#
        if LeafHash.xxh3.isAvailable {
            let ours = try #require(said.firstMatch(of: keyed)?.1, "\(said)")
            #expect(receiverSaid.firstMatch(of: keyed)?.1 == ours, "\(receiverSaid)")
        }
    }

    /// A plain (not sync) transfer's samples carry no compared/changed fields.
    @Test func plainTransferProgressHasNoSyncFields() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeRandomDisk(at: dir + "/src.img", size: 2 << 20, seed: 142)
        let port = Self.freePort()
        let (sender, said, receiver, receiverSaid) = try await Self.runBoth(
            ferry,
            receive: ["receive", dir + "/dst.img", "--listen", "127.0.0.1:\(port)", "--insecure", "--progress", "json"],
            send: ["send", dir + "/src.img", "127.0.0.1:\(port)", "--insecure", "--progress", "json"])
        #expect(sender == 0 && receiver == 0, "\(said) \(receiverSaid)")
        let last = try #require(said.split(separator: "\n").last { $0.hasPrefix("{") }, "\(said)")
        #expect(!last.contains("comparedBytes") && !last.contains("changedBytes"), "\(last)")
    }
}
