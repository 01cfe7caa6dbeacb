import FerryCopy
import FerryDisk
import FerryProtocol
import FerryTransfer
import NIOCore
import Foundation
import Testing

extension InProcessNetwork {
/// Delta sync (warm migration): a receiver whose target holds an earlier copy is sent only
/// the blocks that differ. Bytes on the wire are counted by a relay (`TapProxy`), never
/// timed; the target is compared byte for byte with the source and its digest recomputed
/// by the local copy engine (an independent path).
@Suite(.serialized) struct DeltaSyncTests {
    static let size = 24 * 1024 * 1024 + 65536 * 2 + 4321  // a short last block too
    static let block = 65536

    func receiver(_ dir: String, sync: Bool = true, retry: Double = 0) -> ReceiveConfiguration {
        var rc = Loopback.resumableReceiver(targets: [dir + "/dst.img"], retry: retry)
        rc.sync = sync
        rc.overwrite = true
        return rc
    }

    /// One pass through a counting relay: the sender's summary and the bytes each way.
    func pass(_ dir: String, sync: Bool = true, receiverSync: Bool = true) async throws
        -> (sent: TransferSummary, toReceiver: Int, toSender: Int)
    {
        let (receiver, port) = try await Loopback.startReceiver(receiver(dir, sync: receiverSync))
        let tap = try await TapProxy.start(relayingTo: port)
        var sc = Loopback.sendConfig(port: tap.port, code: nil)
        sc.compress = .none
        sc.sync = sync
        let sent = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        let received = try await receiver.value
        tap.stop()
        #expect(received.disks.first?.digest == sent.disks.first?.digest)
        return (sent, tap.recorder.senderBytes.withLock { $0 }, tap.recorder.receiverBytes.withLock { $0 })
    }

    /// Changes `count` distinct whole blocks of `bytes` at seeded random places (one byte
    /// each is enough to change a block's hash); returns the changed block indices.
    static func change(_ bytes: inout [UInt8], blocks count: Int, seed: UInt64) -> Set<Int> {
        var rng = SplitMix(seed: seed)
        let total = (bytes.count + block - 1) / block
        var changed = Set<Int>()
        while changed.count < count {
            let b = Int(rng.next() % UInt64(total))
            guard changed.insert(b).inserted else { continue }
            let at = min(bytes.count - 1, b * block + Int(rng.next() % UInt64(block)))
            bytes[at] ^= 0x5A
        }
        return changed
    }

    /// The target equals the source byte for byte, and the session's digest is what the local
    /// copy engine computes over the target with the session's leaf: keyed XXH3 (the key the
    /// receiver drew) when both ends have libxxhash, else SHA-256.
    static func expectIdentical(_ dir: String, _ bytes: [UInt8], _ sent: TransferSummary, keyed: Bool = LeafHash.xxh3.isAvailable) throws {
        #expect(Loopback.read(dir + "/dst.img") == bytes)
        let leaf = try #require(sent.disks.first?.digest.leaf)
        #expect(leaf.isKeyed == keyed, "session leaf \(leaf)")
        #expect(sent.disks.first?.digest == (try Loopback.digest(of: dir + "/dst.img", leaf: leaf)))
    }

    @Test func unchangedTargetCostsHashesNotData() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 141)
        try FileManager.default.copyItem(atPath: dir + "/src.img", toPath: dir + "/dst.img")
        let (sent, toReceiver, toSender) = try await pass(dir)
        try Self.expectIdentical(dir, bytes, sent)
        #expect(sent.disks.first?.dataBytes == 0)
        // Leaves in `same` (32 bytes per 64 KiB) and segment digests: ≤ 0.1 % of the disk each way.
        print("unchanged \(Self.size) bytes: \(toReceiver) bytes to the receiver, \(toSender) back")
        #expect(toReceiver <= Self.size / 1000 + 2048, "\(toReceiver)")
        #expect(toSender <= Self.size / 1000 + 2048, "\(toSender)")
    }

    @Test func onePercentChangedSendsOnlyThoseBlocks() async throws {
        let dir = try Loopback.temporaryDirectory()
        var bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 142)
        try FileManager.default.copyItem(atPath: dir + "/src.img", toPath: dir + "/dst.img")
        let total = (Self.size + Self.block - 1) / Self.block
        let changed = Self.change(&bytes, blocks: total / 100, seed: 143)
        _ = FileManager.default.createFile(atPath: dir + "/src.img", contents: Data(bytes))
        let (sent, toReceiver, _) = try await pass(dir)
        try Self.expectIdentical(dir, bytes, sent)
        let changedBytes = changed.reduce(0) { $0 + min(Self.block, Self.size - $1 * Self.block) }
        #expect(sent.disks.first?.dataBytes == UInt64(changedBytes))
        print("1 % changed: \(changedBytes) bytes changed, \(toReceiver) on the wire to the receiver")
        #expect(Double(toReceiver) <= 1.05 * Double(changedBytes) + 0.002 * Double(Self.size), "\(toReceiver)")
    }

    @Test func differentContentOfTheSameSizeIsAFullCopyVerified() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 144)
        _ = try Loopback.makeRandomDisk(at: dir + "/dst.img", size: Self.size, seed: 145)
        let (sent, _, _) = try await pass(dir)
        try Self.expectIdentical(dir, bytes, sent)
        #expect(sent.disks.first?.dataBytes == UInt64(Self.size))
    }

    @Test func targetOfAnotherSizeIsAFullCopyVerified() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeDisk(at: dir + "/src.img", size: Self.size, seed: 146)
        _ = try Loopback.makeRandomDisk(at: dir + "/dst.img", size: Self.size / 2, seed: 147)
        let (sent, _, _) = try await pass(dir)
        try Self.expectIdentical(dir, bytes, sent)
        let data = try #require(sent.disks.first?.dataBytes)
        let zero = try #require(sent.disks.first?.zeroBytes)
        #expect(data + zero == UInt64(Self.size))
    }

    /// Each session draws its own key: two passes over the same disks hash differently, so a
    /// guest that saw one pass's leaves (it cannot) still could not aim at the next.
    @Test func eachPassHashesWithAKeyOfItsOwn() async throws {
        try #require(LeafHash.xxh3.isAvailable, "libxxhash.so.0 (libxxhash0) is needed for keyed leaves")
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 151)
        try FileManager.default.copyItem(atPath: dir + "/src.img", toPath: dir + "/dst.img")
        let first = try await pass(dir).sent
        let second = try await pass(dir).sent
        try Self.expectIdentical(dir, bytes, first)
        try Self.expectIdentical(dir, bytes, second)
        let a = try #require(first.disks.first?.digest), b = try #require(second.disks.first?.digest)
        #expect(a.leaf.key != nil && b.leaf.key != nil && a.leaf.key != b.leaf.key)
        #expect(a.bytes != b.bytes)
        // Neither equals the unkeyed digest `ferry checksum --digest xxh3` prints.
        #expect(a.bytes != (try Loopback.digest(of: dir + "/src.img", leaf: .xxh3))?.bytes)
    }

    /// `--digest sha256` with `--sync` keeps the pass on SHA-256 leaves (no key offered).
    @Test func sha256IsKeptWhenAskedFor() async throws {
        let dir = try Loopback.temporaryDirectory()
        var bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 152)
        try FileManager.default.copyItem(atPath: dir + "/src.img", toPath: dir + "/dst.img")
        let changed = Self.change(&bytes, blocks: 3, seed: 153)
        _ = FileManager.default.createFile(atPath: dir + "/src.img", contents: Data(bytes))
        let (receiver, port) = try await Loopback.startReceiver(receiver(dir))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.compress = .none
        sc.sync = true
        sc.digest = .sha256
        let sent = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        let received = try await receiver.value
        #expect(received.disks.first?.digest == sent.disks.first?.digest)
        try Self.expectIdentical(dir, bytes, sent, keyed: false)
        #expect(sent.disks.first?.digest.leaf == .sha256)
        #expect(sent.disks.first?.dataBytes == UInt64(changed.count * Self.block))
    }

    @Test func aReceiverWithoutSyncGetsTodaysFullCopy() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 148)
        try FileManager.default.copyItem(atPath: dir + "/src.img", toPath: dir + "/dst.img")
        let (sent, toReceiver, _) = try await pass(dir, receiverSync: false)
        try Self.expectIdentical(dir, bytes, sent, keyed: false)
        #expect(sent.disks.first?.dataBytes == UInt64(Self.size))
        #expect(toReceiver > Self.size)
    }

    /// A pass cut midway and retried: the reconnect re-hashes the target, so what the cut
    /// pass wrote is not sent again.
    @Test func aCutPassResumesWithoutResendingWhatItWrote() async throws {
        let dir = try Loopback.temporaryDirectory()
        var bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 149)
        try FileManager.default.copyItem(atPath: dir + "/src.img", toPath: dir + "/dst.img")
        let total = (Self.size + Self.block - 1) / Self.block
        let changed = Self.change(&bytes, blocks: total / 4, seed: 150)
        _ = FileManager.default.createFile(atPath: dir + "/src.img", contents: Data(bytes))
        let changedBytes = UInt64(changed.count * Self.block)

        let (receiver, port) = try await Loopback.startReceiver(receiver(dir, retry: 60))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.compress = .none
        sc.sync = true
        sc.retryFor = 60
        sc.workers = 1
        sc.dropAfterBytes = changedBytes / 2
        let sent = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        _ = try await receiver.value
        try Self.expectIdentical(dir, bytes, sent)
        let data = try #require(sent.disks.first?.dataBytes)
        print("cut pass: \(changedBytes) bytes changed, \(data) data bytes sent over both connections")
        // Everything changed went once, plus at most what was in flight at the cut (a few blocks).
        #expect(data >= changedBytes && data <= changedBytes + 16 * UInt64(Self.block), "\(data)")
    }
}
}

/// The fine pass's rules, one transition each: what a hostile peer may not do.
@Suite struct DeltaStateMachineTests {
    static let size: UInt64 = 10 << 20
    let disk0 = DiskDescription(index: 0, count: 1, size: size, sectorSize: 512, name: "d")

    func sender(peer: Capabilities = .hashExchange, flags: UInt32 = DiskReady.delta) -> SenderStateMachine {
        var m = SenderStateMachine(diskCount: 1, capabilities: .hashExchange, diskSizes: [Self.size])
        _ = m.start()
        _ = m.received(.hello(Hello(capabilities: peer, role: .receiver)))
        _ = m.received(.ready(DiskReady(index: 0, flags: flags)))
        return m
    }

    func list(_ indices: [UInt64], final: Bool = true) -> Message {
        .segments(SegmentList(
            disk: 0, segmentSize: 1 << 20, isFinal: final,
            entries: indices.map { SegmentList.Entry(index: $0, digest: [UInt8](repeating: 1, count: 32)) }))
    }

    func hashes(_ offset: UInt64, _ length: Int) -> Message {
        .blockHashes(BlockHashList(
            disk: 0, offset: offset, length: length, leaves: ByteBuffer(repeating: 0, count: (length + 65535) / 65536 * 32)))
    }

    func fails(_ action: SenderStateMachine.Action) -> Bool {
        if case .fail = action { true } else { false }
    }

    @Test func deltaReadyWithoutTheAgreedExchangeIsRefused() {
        var m = SenderStateMachine(diskCount: 1, capabilities: .hashExchange, diskSizes: [Self.size])
        _ = m.start()
        _ = m.received(.hello(Hello(capabilities: [], role: .receiver)))
        #expect(fails(m.received(.ready(DiskReady(index: 0, flags: DiskReady.delta)))))
    }

    /// A leaf key in `ready` is refused unless both hellos offered keyed XXH3 with the
    /// exchange (a receiver cannot switch the hash on a sender that did not ask).
    @Test func leafKeyWithoutTheAgreementIsRefused() {
        let key = [UInt8](repeating: 7, count: DiskReady.leafKeySize)
        var m = SenderStateMachine(diskCount: 1, capabilities: .hashExchange, diskSizes: [Self.size])
        _ = m.start()
        _ = m.received(.hello(Hello(capabilities: [.hashExchange, .keyedXXH3], role: .receiver)))
        #expect(fails(m.received(.ready(DiskReady(index: 0, flags: DiskReady.delta, leafKey: key)))))

        var agreed = SenderStateMachine(diskCount: 1, capabilities: [.hashExchange, .keyedXXH3], diskSizes: [Self.size])
        _ = agreed.start()
        _ = agreed.received(.hello(Hello(capabilities: [.hashExchange, .keyedXXH3], role: .receiver)))
        #expect(!fails(agreed.received(.ready(DiskReady(index: 0, flags: DiskReady.delta, leafKey: key)))))
        #expect(agreed.leafKeys[0] == key)
    }

    @Test func receiverSendsNoKeyUnlessAgreed() {
        var r = ReceiverStateMachine(diskCount: 1, capabilities: [.hashExchange, .keyedXXH3])
        _ = r.received(.hello(Hello(capabilities: .hashExchange, role: .sender)))
        _ = r.received(.disk(disk0))
        let key = [UInt8](repeating: 7, count: DiskReady.leafKeySize)
        if case .fail = r.diskOpened(0, flags: DiskReady.delta, leafKey: key) {} else {
            Issue.record("a key was sent to a sender that did not offer keyed XXH3")
        }
    }

    /// The key rides after the flags; a `ready` that claims one and is cut short does not decode.
    @Test func readyWithAKeyRoundTripsAndATruncatedOneDoesNot() throws {
        let key = (0..<DiskReady.leafKeySize).map { UInt8($0) }
        let ready = Message.ready(DiskReady(index: 3, flags: DiskReady.delta, leafKey: key))
        var frame = ByteBuffer()
        ready.write(to: &frame)
        #expect(try MessageDecoder.next(from: &frame) == ready)
        // index 3, flags delta | keyed, and a key one byte short.
        var cut = ByteBuffer()
        cut.writeInteger(UInt32(3))
        cut.writeInteger(DiskReady.delta | DiskReady.keyedLeaves)
        cut.writeBytes(key.dropLast())
        #expect(throws: ProtocolError.self) { _ = try Message(kind: 0x03, payload: &cut) }
    }

    @Test func segmentPastTheEndIsRefused() {
        var m = sender()
        #expect(fails(m.received(list([10]))))
    }

    @Test func segmentListFloodIsRefused() {
        var m = sender()
        #expect(!fails(m.received(list(Array(0..<10), final: false))))
        #expect(fails(m.received(list([3]))))
    }

    @Test func blockHashesNotAskedForAreRefused() {
        var m = sender()
        _ = m.received(list(Array(0..<10)))
        #expect(fails(m.received(hashes(0, 1 << 20))))
    }

    @Test func blockHashesOfTheWrongLengthAreRefused() {
        var m = sender()
        _ = m.received(list(Array(0..<10)))
        #expect(m.requestBlocks(disk: 0, segment: 2, range: (2 << 20)..<(3 << 20))
            == .send(.blockRequest(BlockRequest(disk: 0, segment: 2))))
        #expect(fails(m.received(hashes(2 << 20, 65536))))
    }

    @Test func askedBlockHashesAreAcceptedOnce() {
        var m = sender()
        _ = m.received(list(Array(0..<10)))
        _ = m.requestBlocks(disk: 0, segment: 2, range: (2 << 20)..<(3 << 20))
        guard case .blockHashes = m.received(hashes(2 << 20, 1 << 20)) else { Issue.record(); return }
        #expect(fails(m.received(hashes(2 << 20, 1 << 20))))
    }

    @Test func noRequestsForADiskThatIsNotDelta() {
        var m = sender(flags: DiskReady.resume)
        _ = m.received(list([0]))
        #expect(fails(m.requestBlocks(disk: 0, segment: 0, range: 0..<(1 << 20))))
    }

    func receiver(agreed: Bool) -> ReceiverStateMachine {
        var m = ReceiverStateMachine(diskCount: 1, capabilities: .hashExchange)
        _ = m.received(.hello(Hello(capabilities: agreed ? .hashExchange : [], role: .sender)))
        _ = m.received(.disk(disk0))
        _ = m.diskOpened(0, flags: DiskReady.delta)
        return m
    }

    @Test func receiverRefusesTheFinePassUnlessAgreed() {
        var m = receiver(agreed: false)
        guard case .fail = m.received(.blockRequest(BlockRequest(disk: 0, segment: 0))) else { Issue.record(); return }
        var n = receiver(agreed: false)
        guard case .fail = n.received(.sameBlocks(SameBlocks(disk: 0, offset: 0, length: 65536))) else { Issue.record(); return }
    }

    @Test func receiverAnswersRequestsAndCountsSameBlocksAsCoverage() {
        var m = receiver(agreed: true)
        #expect(m.received(.blockRequest(BlockRequest(disk: 0, segment: 3))) == .hashBlocks(BlockRequest(disk: 0, segment: 3)))
        let same = SameBlocks(disk: 0, offset: 0, length: 65536)
        #expect(m.received(.sameBlocks(same)) == .sameBlocks(same))
        guard case .fail = m.received(.sameBlocks(same)) else { Issue.record("overlap accepted"); return }
    }

    @Test func sameBlocksPastTheEndAreRefused() {
        var m = receiver(agreed: true)
        guard case .fail = m.received(.sameBlocks(SameBlocks(disk: 0, offset: Self.size, length: 65536))) else {
            Issue.record()
            return
        }
    }

    @Test func misalignedOrOversizeDeltaMessagesDoNotDecode() throws {
        for message in [
            Message.sameBlocks(SameBlocks(disk: 0, offset: 100, length: 65536)),
            .sameBlocks(SameBlocks(disk: 0, offset: 0, length: (64 << 20) + 1)),
            .blockHashes(BlockHashList(disk: 0, offset: 1, length: 65536, leaves: ByteBuffer(repeating: 0, count: 32))),
            .sameBlocks(SameBlocks(disk: 0, offset: UInt64.max - 65535, length: 65536 * 2)),
        ] {
            var frame = ByteBuffer()
            message.write(to: &frame)
            #expect(throws: ProtocolError.self) { _ = try MessageDecoder.next(from: &frame) }
        }
        var good = ByteBuffer()
        let ok = Message.blockHashes(BlockHashList(disk: 1, offset: 65536, length: 70000, leaves: ByteBuffer(repeating: 7, count: 64)))
        ok.write(to: &good)
        #expect(try MessageDecoder.next(from: &good) == ok)
    }
}

extension InProcessNetwork.HostilePeerTests {
    /// A sender that agreed to delta sync and then asks for the hashes of a segment that was
    /// never listed, or claims unchanged blocks whose hashes it never asked for, is refused
    /// with an error; the target keeps its old copy byte for byte.
    @Test func deltaClaimsThatWereNeverOfferedAreRefused() async throws {
        for attack in [
            Message.blockRequest(BlockRequest(disk: 0, segment: 5)),
            .sameBlocks(SameBlocks(disk: 0, offset: 0, length: 65536)),
        ] {
            let dir = try Loopback.temporaryDirectory()
            let old = try Loopback.makeRandomDisk(at: dir + "/dst.img", size: Int(size), seed: 153)
            var config = Loopback.resumableReceiver(targets: [dir + "/dst.img"])
            config.sync = true
            config.overwrite = true
            let (receiver, port) = try await Loopback.startReceiver(config)
            let agreed = Message.hello(Hello(capabilities: .hashExchange, role: .sender))
            let replies = try await Self.run(port: port, [Self.frame([agreed, disk, attack])])
            await #expect(throws: TransferError.self) { _ = try await receiver.value }
            #expect(replies.contains { if case .error = $0 { true } else { false } }, "\(attack.kind): \(replies.map(\.kind))")
            #expect(Loopback.read(dir + "/dst.img") == old)
        }
    }
}
