import FerryCopy
import FerryDisk
import FerryProtocol
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Streaming one disk of a session: the resume proof, the workers, the finish.
extension SenderSession {
    /// Streams disk `index` (its workers share the session's request permits), then sends `finish`.
    func stream(
        _ index: UInt32, _ outbound: NIOAsyncChannelOutboundWriter<Message>, _ connection: MessageChannel
    ) async throws {
        let source = sources[Int(index)]
        let sent = sent[Int(index)]
        let policy = try compressionPolicy()
        let journaled = resume.withLock { $0[index] }
        var skip: SegmentSkip?
        // A delta disk's receiver may have keyed its block hashes (`ready` carried the key).
        let leaf = machine.withLock { m -> LeafHash in
            if let bytes = m.leafKeys[index], let key = LeafKey(bytes: bytes) { return .xxh3Keyed(key) }
            return LeafHash.agreed(m.capabilities, m.peerCapabilities)
        }
        let leaves = DigestBuilder(size: source.size, leaf: leaf)
        let isDelta = machine.withLock { $0.deltaDisks.contains(index) }
        let checker = SourceStreamer(
            index: index, source: source, requestSize: config.requestSize, counters: sent, policy: nil, digest: leaves)
        if isDelta {
            let fine = SourceStreamer(
                index: index, source: source, requestSize: config.requestSize, counters: sent, policy: policy, digest: leaves)
            let (segmentSize, matched) = try await compareStreaming(checker, fine, outbound, connection)
            skip = SegmentSkip(segmentSize: max(segmentSize, 1), matched: matched)
        } else if let journaled, !journaled.entries.isEmpty {
            let matched = try await verifyJournaled(
                journaled.entries, segmentSize: journaled.segmentSize, checker, outbound, name: source.name, connection)
            skip = SegmentSkip(segmentSize: journaled.segmentSize, matched: matched)
        }
        // A source read whole (a block device) is scouted ahead for zeros while the link is busy.
        let scout = !isDelta && ZeroScout.enabled && ZeroScout.worthwhile(for: source)
            ? ZeroScout(source: source, grain: UInt64(config.requestSize)) : nil
        let streamer = SourceStreamer(
            index: index, source: source, requestSize: config.requestSize, counters: sent, policy: policy, digest: leaves,
            skip: skip, scout: scout)
        do {
            try await withThrowingTaskGroup(of: Void.self) { workers in
                for _ in 0..<max(1, config.workers) {
                    workers.addTask { try await self.work(streamer, connection) }
                }
                try await workers.waitForAll()
            }
        } catch {
            await scout?.stop()
            throw error
        }
        await scout?.stop()
        if machine.withLock({ $0.deltaDisks.contains(index) }) {
            DeltaNotice.say(delta.report(disk: index, name: source.name, sent: sent.data.load(ordering: .relaxed)))
        } else if config.sync {
            let agreed = machine.withLock { $0.hashExchange }
            DeltaNotice.say("ferry send: \(source.name): " + (agreed
                ? "the receiver holds no earlier copy of this disk: a full copy (the seed pass)"
                : "the receiver does not do delta sync (run it with --sync; an older ferry cannot): a full copy"))
        }
        if CompressionPolicy.tracing {
            var lines = policy.map { ["ferry: \(source.name): \($0.summary)"] } ?? []
            if let s = scout?.statistics {
                lines.append("ferry: \(source.name): zero scout scanned \(s.scanned) bytes ahead, found \(s.found) zero, skipped \(s.skipped)")
            }
            try? FileHandle.standardError.write(contentsOf: Data(lines.map { $0 + "\n" }.joined().utf8))
        }
        // Before `finish`: a source whose size moved fails the disk, and the receiver discards it.
        let changed = try config.watch(Int(index))?.verdict()
        let digest: DiskDigest
        do {
            digest = try streamer.digest.finalize()
        } catch {
            throw ProtocolError(.io, "\(error)")
        }
        summaries.withLock {
            $0[index] = TransferSummary.Disk(
                name: source.name, size: source.size, dataBytes: sent.data.load(ordering: .relaxed),
                zeroBytes: sent.zero.load(ordering: .relaxed), digest: digest, sourceChanged: changed,
                zeroScouted: scout?.statistics.skipped ?? 0)
        }
        let action = machine.withLock { $0.allSent(disk: index, digest: digest.bytes) }
        if case .send(let message) = action {
            try await outbound.write(message)
        } else if case .fail(let error) = action {
            throw TransferError(error, fromPeer: false)
        }
    }

    /// One worker: takes a permit, prepares the next request of its disk and writes it,
    /// until the disk is exhausted.
    private func work(_ streamer: SourceStreamer, _ connection: MessageChannel) async throws {
        let clock = ContinuousClock()
        while true {
            try await permits.acquire()
            defer { permits.release() }
            let started = clock.now
            guard let messages = try await prepare(streamer) else { return }
            let prepared = clock.now
            for message in messages {
                if let limiter { await limiter.take(message.wireBytes) }
                // Straight to the channel, waiting until the bytes reach the socket: a
                // permit is then held until its request's bytes are gone, so the sender's
                // memory is bounded by permits × request size. (The async writer returns
                // once the message is queued, and queues can grow while the event loop is
                // busy encrypting.)
                try await connection.channel.writeAndFlush(message)
            }
            if let dropAfter = config.dropAfterBytes,
                sent.reduce(0, { $0 + $1.data.load(ordering: .relaxed) }) >= dropAfter
            {
                connection.channel.close(promise: nil)  // test hook: a cut link
            }
            let wait = (clock.now - prepared).seconds
            counters.stages.add(.network, wait)
            let wire = messages.reduce(0) { $0 + $1.wireBytes }
            streamer.counters.wire.add(UInt64(wire), ordering: .relaxed)
            streamer.policy?.recordSent(wireBytes: wire, work: (prepared - started).seconds, wait: wait)
            // Waiting on the link longer than preparing: the disk has time to look ahead.
            if wait > (prepared - started).seconds { streamer.planner.scout?.kick() }
        }
    }

    /// The compression policy for this session: the asked-for codec must be loadable
    /// here and offered by the receiver; `auto` uses whatever both have.
    func compressionPolicy() throws -> CompressionPolicy? {
        let peer = machine.withLock { $0.peerCapabilities }
        let mode = config.compress
        switch mode {
        case .none:
            return nil
        case .auto:
            let usable = Codec.available().filter { peer.contains(Codec.capability($0.kind)) }
            // Chunks are prepared on the blocking pool, at most `workers` at once.
            let parallelism = min(max(1, config.workers), NIOSingletons.blockingPoolThreadCountSuggestion)
            return usable.isEmpty
                ? nil : CompressionPolicy(mode: .auto, usable: usable, parallelism: parallelism, limit: config.limit)
        case .zstd, .lz4, .gzip:
            let kind: CompressedExtent.Codec = mode == .zstd ? .zstd : mode == .lz4 ? .lz4 : .gzip
            let codec = try Codec.load(kind)
            guard peer.contains(Codec.capability(kind)) else {
                throw TransferError(.usage, "the receiver cannot decompress \(mode.rawValue) (its library is missing there)")
            }
            return CompressionPolicy(mode: mode, usable: [codec])
        }
    }

    /// Resume: re-reads each journaled segment of the source (several at a time) and
    /// proves the unchanged ones to the receiver; changed ones are sent again.
    private func verifyJournaled(
        _ journaled: [UInt64: [UInt8]], segmentSize: UInt64, _ checker: SourceStreamer,
        _ outbound: NIOAsyncChannelOutboundWriter<Message>, name: String, _ connection: MessageChannel
    ) async throws -> Set<UInt64> {
        let queue = SegmentQueue(journaled.keys.sorted())
        try await withThrowingTaskGroup(of: Void.self) { workers in
            for _ in 0..<max(1, config.workers) {
                workers.addTask {
                    while let segment = queue.next() {
                        try await self.permits.acquire()
                        defer { self.permits.release() }
                        try await self.compare(
                            segment, segmentSize, journaled[segment] ?? [], checker, nil, outbound, connection, queue)
                    }
                }
            }
            try await workers.waitForAll()
        }
        let result = queue.matched.withLock { $0 }
        let changed = journaled.count - result.count
        try? FileHandle.standardError.write(contentsOf: Data((changed == 0
            ? "ferry: resuming \(name): \(result.count) segment(s) already on the receiver match the source\n"
            : "ferry: resuming \(name): the source changed since the interrupted transfer: \(changed) of \(journaled.count) journaled segment(s) differ and are sent again\n").utf8))
        return result
    }

    /// Delta sync: compares each segment the receiver lists as its lists arrive (it is still
    /// hashing its target), `workers` segments at a time: `same` for an unchanged one, the
    /// fine pass for the others. Returns the segment size and the segments covered.
    private func compareStreaming(
        _ checker: SourceStreamer, _ fine: SourceStreamer, _ outbound: NIOAsyncChannelOutboundWriter<Message>,
        _ connection: MessageChannel
    ) async throws -> (UInt64, Set<UInt64>) {
        let matched = SegmentQueue([])  // only its `matched` set
        var segmentSize: UInt64 = 0
        try await withThrowingTaskGroup(of: Void.self) { workers in
            for await list in delta.lists(disk: checker.index) {
                if segmentSize == 0 { segmentSize = UInt64(list.segmentSize) }
                guard segmentSize == UInt64(list.segmentSize) else {
                    delta.close()
                    throw ProtocolError(.protocolViolation, "disk \(checker.index): the receiver changed its segment size")
                }
                for entry in list.entries {
                    try await permits.acquire()
                    let size = segmentSize
                    workers.addTask {
                        defer { self.permits.release() }
                        do {
                            try await self.compare(entry.index, size, entry.digest, checker, fine, outbound, connection, matched)
                        } catch {
                            self.delta.close()  // ends the feed, so the loop sees the failure
                            throw error
                        }
                    }
                }
            }
            try await workers.waitForAll()
        }
        return (segmentSize, matched.matched.withLock { $0 })
    }

    /// One listed segment: the proof that it is unchanged, or (delta sync, `fine`) the fine
    /// pass; resume leaves a changed one to be streamed again.
    private func compare(
        _ segment: UInt64, _ segmentSize: UInt64, _ expected: [UInt8], _ checker: SourceStreamer, _ fine: SourceStreamer?,
        _ outbound: NIOAsyncChannelOutboundWriter<Message>, _ connection: MessageChannel, _ matched: SegmentQueue
    ) async throws {
        let comparison = try await NIOThreadPool.singleton.runIfActive {
            try checker.compareSegment(segment, size: segmentSize, expected: expected)
        }
        switch comparison {
        case .same(let proof):
            if fine != nil {
                delta.count(disk: checker.index, compared: UInt64(proof.length))
                checker.counters.add(compared: UInt64(proof.length), changed: 0)
            }
            matched.matched.withLock { _ = $0.insert(segment) }
            try await outbound.write(.same(proof))
        case .differs(let range, let leaves):
            guard let fine else { return }
            try await finePass(segment, range, leaves, fine, outbound, connection)
            matched.matched.withLock { _ = $0.insert(segment) }
        case nil:
            return
        }
    }

    /// Delta sync's fine pass over one segment whose digest differs: asks for the
    /// receiver's block hashes, then sends the blocks that differ and `sameBlocks` for the rest.
    private func finePass(
        _ segment: UInt64, _ range: Range<UInt64>, _ leaves: [BlockHash], _ streamer: SourceStreamer,
        _ outbound: NIOAsyncChannelOutboundWriter<Message>, _ connection: MessageChannel
    ) async throws {
        let disk = streamer.index
        let action = machine.withLock { $0.requestBlocks(disk: disk, segment: segment, range: range) }
        guard case .send(let request) = action else {
            if case .fail(let error) = action { throw TransferError(error, fromPeer: false) }
            return
        }
        try await outbound.write(request)
        let theirs = try await delta.hashes(disk: disk, offset: range.lowerBound)
        let (messages, changed) = try await NIOThreadPool.singleton.runIfActive {
            try streamer.finePass(range, ours: leaves, theirs: theirs)
        }
        delta.count(disk: disk, compared: UInt64(range.count), changed: changed)
        streamer.counters.add(compared: UInt64(range.count), changed: changed)
        for message in messages {
            if let limiter { await limiter.take(message.wireBytes) }
            try await connection.channel.writeAndFlush(message)
            streamer.counters.wire.add(UInt64(message.wireBytes), ordering: .relaxed)
        }
        if let dropAfter = config.dropAfterBytes,
            sent.reduce(0, { $0 + $1.data.load(ordering: .relaxed) }) >= dropAfter
        {
            connection.channel.close(promise: nil)  // test hook: a cut link
        }
    }

    private func prepare(_ streamer: SourceStreamer) async throws -> [Message]? {
        do {
            return try await NIOThreadPool.singleton.runIfActive { try streamer.next() }
        } catch let error as DiskError {
            throw TransferError(.io, error.description)
        }
    }
}

/// Journaled segments waiting to be checked, shared by the checking workers (the
/// sender's against its source, the receiver's against its target).
final class SegmentQueue: Sendable {
    private let pending: Mutex<[UInt64]>
    let matched = Mutex(Set<UInt64>())

    init(_ segments: [UInt64]) { pending = Mutex(segments.reversed()) }

    func next() -> UInt64? { pending.withLock { $0.popLast() } }
}
