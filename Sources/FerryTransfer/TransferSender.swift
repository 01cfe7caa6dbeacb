import FerryCopy
public import FerryDisk
import FerryProtocol
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// `ferry send`: connects, pairs, streams each source disk and succeeds only when
/// the receiver reports the disk flushed, committed and matching the sender's digest.
public enum TransferSender {
    public static func run(sources: [any BlockDevice], _ config: SendConfiguration) async throws -> TransferSummary {
        guard !sources.isEmpty else { throw TransferError(.usage, "name at least one source") }
        MemoryTuning.apply()
        guard sources.count <= WireLimits.maxDisks else {
            throw TransferError(.usage, "at most \(WireLimits.maxDisks) disks per session")
        }
        let identity: PairingIdentity?
        if config.insecure {
            identity = nil
        } else {
            guard let code = config.code else {
                throw TransferError(.usage, "give the pairing code the receiver printed (--code), or --insecure on both sides")
            }
            identity = try PairingIdentity(code: code, role: .sender)
        }
        let started = Date()
        var firstFailure: Date?
        var config = config
        while true {
            let sender = SenderSession(sources: sources, config: config)
            do {
                let connection = try await TransferChannel.connect(to: config.destination, identity: identity)
                do {
                    try await sender.run(connection)
                } catch {
                    throw TransferChannel.classify(error, helloSeen: sender.helloSeen.load(ordering: .relaxed))
                }
                return TransferSummary(disks: sender.summaries.withLock { $0 }, seconds: Date().timeIntervalSince(started))
            } catch let error as TransferError where error.kind == .network && config.retryFor > 0 {
                // Reconnect and resume from the receiver's journal, for at most retryFor seconds.
                let since = firstFailure ?? Date()
                firstFailure = since
                guard Date().timeIntervalSince(since) < config.retryFor else { throw error }
                config.dropAfterBytes = nil
                FileHandle.standardError.write(Data("ferry: \(error.message); reconnecting\n".utf8))
                try await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
    }
}

private final class SenderSession: Sendable {
    let sources: [any BlockDevice]
    let config: SendConfiguration
    let machine: Mutex<SenderStateMachine>
    let helloSeen = Atomic<Bool>(false)
    let summaries = Mutex<[TransferSummary.Disk]>([])
    /// Acknowledged bytes (progress) and what was sent.
    let counters = CopyCounters()
    let sent = CopyCounters()
    let reporter = Mutex<ProgressReporter?>(nil)
    let failure = Mutex<(any Error)?>(nil)
    /// Journaled segments a resuming receiver holds.
    let resume = Mutex<(segmentSize: UInt64, entries: [UInt64: [UInt8]])>((segmentSize: 64 << 20, entries: [:]))

    init(sources: [any BlockDevice], config: SendConfiguration) {
        self.sources = sources
        self.config = config
        machine = Mutex(SenderStateMachine(diskCount: sources.count, capabilities: []))
    }

    func run(_ connection: MessageChannel) async throws {
        defer { reporter.withLock { $0?.stop() } }
        try await connection.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                defer { group.cancelAll() }
                _ = try await perform(machine.withLock { $0.start() }, outbound, &group, connection)
                try await TransferChannel.pump(
                    inbound, outbound, failure: { self.failure.withLock { $0 } },
                    sawHello: { self.helloSeen.store(true, ordering: .relaxed) }, peer: "receiver"
                ) { message in
                    let action = machine.withLock { $0.received(message) }
                    return try await perform(action, outbound, &group, connection)
                }
            }
        }
    }

    /// Carries out one action; true when the session is complete.
    private func perform(
        _ action: SenderStateMachine.Action, _ outbound: NIOAsyncChannelOutboundWriter<Message>,
        _ group: inout ThrowingTaskGroup<Void, any Error>, _ connection: MessageChannel
    ) async throws -> Bool {
        switch action {
        case .send(let message):
            try await outbound.write(message)
        case .describe(let index):
            let source = sources[Int(index)]
            try await outbound.write(
                .disk(DiskDescription(
                    index: index, count: UInt32(sources.count), size: source.size,
                    sectorSize: UInt32(source.logicalSectorSize == 4096 ? 4096 : 512), name: source.name)))
        case .ignoreForNow:
            break
        case .resumeSegments(let list, let start):
            resume.withLock { r in
                r.segmentSize = UInt64(list.segmentSize)
                for e in list.entries { r.entries[e.index] = e.digest }
            }
            if start { begin(list.disk, outbound, &group, connection) }
        case .startSending(let index, _):
            begin(index, outbound, &group, connection)
        case .progress(let ack):
            counters.done.store(ack.written, ordering: .relaxed)
            counters.data.store(sent.data.load(ordering: .relaxed), ordering: .relaxed)
            counters.zero.store(sent.zero.load(ordering: .relaxed), ordering: .relaxed)
        case .diskVerified:
            break
        case .done:
            return true
        case .fail(let error):
            try? await outbound.write(.error(ErrorMessage(error)))
            throw TransferError(error, fromPeer: false)
        case .peerFailed(let error):
            throw TransferError(error, fromPeer: true)
        }
        return false
    }

    /// Starts streaming disk `index` as a child task.
    private func begin(
        _ index: UInt32, _ outbound: NIOAsyncChannelOutboundWriter<Message>,
        _ group: inout ThrowingTaskGroup<Void, any Error>, _ connection: MessageChannel
    ) {
        let source = sources[Int(index)]
        counters.done.store(0, ordering: .relaxed)
        reporter.withLock {
            $0?.stop()
            $0 = ProgressReporter(mode: config.progress, phase: "send \(source.name)", total: source.size, counters: counters)
            $0?.start()
        }
        group.addTask {
            // A failed stream (a source read error) must end the session now: tell the
            // receiver and close, or the inbound loop would wait for a reply forever.
            do {
                try await self.stream(index, outbound, connection)
            } catch {
                self.failure.withLock { if $0 == nil { $0 = error } }
                let reason = (error as? ProtocolError) ?? ProtocolError(.io, "\(error)")
                try? await outbound.write(.error(ErrorMessage(reason)))
                connection.channel.close(promise: nil)
                throw error
            }
        }
    }


    /// Streams disk `index` with `config.workers` requests in flight, then sends `finish`.
    private func stream(
        _ index: UInt32, _ outbound: NIOAsyncChannelOutboundWriter<Message>, _ connection: MessageChannel
    ) async throws {
        let source = sources[Int(index)]
        sent.done.store(0, ordering: .relaxed)
        sent.data.store(0, ordering: .relaxed)
        sent.zero.store(0, ordering: .relaxed)
        let policy = try compressionPolicy()
        let (segmentSize, journaled) = resume.withLock { ($0.segmentSize, $0.entries) }
        var skip: SegmentSkip?
        let leaves = DigestBuilder(size: source.size)
        if !journaled.isEmpty {
            let checker = SourceStreamer(
                index: index, source: source, requestSize: config.requestSize, counters: sent, policy: nil, digest: leaves)
            let matched = try await verifyJournaled(journaled, segmentSize: segmentSize, checker, outbound)
            skip = SegmentSkip(segmentSize: segmentSize, matched: matched)
        }
        let streamer = SourceStreamer(
            index: index, source: source, requestSize: config.requestSize, counters: sent, policy: policy, digest: leaves,
            skip: skip)
        let limiter = config.limit.map { RateLimiter(bytesPerSecond: $0) }
        let dropAfter = config.dropAfterBytes
        try await withThrowingTaskGroup(of: Void.self) { workers in
            for _ in 0..<max(1, config.workers) {
                workers.addTask {
                    let clock = ContinuousClock()
                    while true {
                        let started = clock.now
                        guard let messages = try await self.prepare(streamer) else { break }
                        let prepared = clock.now
                        for message in messages {
                            if let limiter { await limiter.take(message.wireBytes) }
                            // Straight to the channel, waiting until the bytes reach the
                            // socket: each worker then holds at most one request, so the
                            // sender's memory is bounded by workers × request size. (The
                            // async writer returns once the message is queued, and queues
                            // can grow while the event loop is busy encrypting.)
                            try await connection.channel.writeAndFlush(message)
                        }
                        if let dropAfter, self.sent.data.load(ordering: .relaxed) >= dropAfter {
                            connection.channel.close(promise: nil)  // test hook: a cut link
                        }
                        streamer.policy?.recordSent(
                            wireBytes: messages.reduce(0) { $0 + $1.wireBytes },
                            work: (prepared - started).seconds, wait: (clock.now - prepared).seconds)
                    }
                }
            }
            try await workers.waitForAll()
        }
        if let policy, CompressionPolicy.tracing {
            FileHandle.standardError.write(Data("ferry: \(source.name): \(policy.summary)\n".utf8))
        }
        let digest: DiskDigest
        do {
            digest = try streamer.digest.finalize()
        } catch {
            throw ProtocolError(.io, "\(error)")
        }
        summaries.withLock {
            $0.append(TransferSummary.Disk(
                name: source.name, size: source.size, dataBytes: sent.data.load(ordering: .relaxed),
                zeroBytes: sent.zero.load(ordering: .relaxed), digest: digest))
        }
        let action = machine.withLock { $0.allSent(digest: digest.bytes) }
        if case .send(let message) = action {
            try await outbound.write(message)
        } else if case .fail(let error) = action {
            throw TransferError(error, fromPeer: false)
        }
    }

    /// The compression policy for this session: the asked-for codec must be loadable
    /// here and offered by the receiver; `auto` uses whatever both have.
    private func compressionPolicy() throws -> CompressionPolicy? {
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
        _ outbound: NIOAsyncChannelOutboundWriter<Message>
    ) async throws -> Set<UInt64> {
        let queue = SegmentQueue(journaled.keys.sorted())
        try await withThrowingTaskGroup(of: Void.self) { workers in
            for _ in 0..<max(1, config.workers) {
                workers.addTask {
                    while let segment = queue.next() {
                        let expected = journaled[segment] ?? []
                        let proof = try await NIOThreadPool.singleton.runIfActive {
                            try checker.checkSegment(segment, size: segmentSize, expected: expected)
                        }
                        guard let proof else { continue }
                        queue.matched.withLock { _ = $0.insert(segment) }
                        try await outbound.write(.same(proof))
                    }
                }
            }
            try await workers.waitForAll()
        }
        let result = queue.matched.withLock { $0 }
        let changed = journaled.count - result.count
        FileHandle.standardError.write(Data((changed == 0
            ? "ferry: resuming: \(result.count) segment(s) already on the receiver match the source\n"
            : "ferry: resuming: the source changed since the interrupted transfer: \(changed) of \(journaled.count) journaled segment(s) differ and are sent again\n").utf8))
        return result
    }

    private func prepare(_ streamer: SourceStreamer) async throws -> [Message]? {
        do {
            return try await NIOThreadPool.singleton.runIfActive { try streamer.next() }
        } catch let error as DiskError {
            throw TransferError(.io, error.description)
        }
    }
}

/// Journaled segments waiting to be checked, shared by the checking workers.
private final class SegmentQueue: Sendable {
    private let pending: Mutex<[UInt64]>
    let matched = Mutex(Set<UInt64>())

    init(_ segments: [UInt64]) { pending = Mutex(segments.reversed()) }

    func next() -> UInt64? { pending.withLock { $0.popLast() } }
}
