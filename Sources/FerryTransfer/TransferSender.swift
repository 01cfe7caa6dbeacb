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
        if config.sync {
            DeltaNotice.say(
                "ferry send: --sync: a pass over a running guest's disk is at best crash-consistent; only the pass after the guest is shut down is the migration")
        }
        let started = Date()
        var firstFailure: Date?
        var config = config
        // Data bytes each disk sent over connections that dropped: the summary counts them too.
        var sentBefore = [UInt64](repeating: 0, count: sources.count)
        var everConnected = false
        // --retry-for counts from the last progress, not from the last reconnect.
        let progress = RetryClock()
        let idle = TimeAmount.milliseconds(Int64(config.idleTimeout * 1000))
        while true {
            let sender = SenderSession(sources: sources, config: config, progress: progress)
            do {
                let connection: MessageChannel
                let probe: PairingProbe
                do {
                    (connection, probe) = try await TransferChannel.connect(to: config.destination, identity: identity, idleTimeout: idle)
                } catch let error as TransferError where !everConnected {
                    // Nobody listening yet: the receiver may still be starting, but a
                    // mistyped address should not keep a console busy for --retry-for.
                    let since = firstFailure ?? Date()
                    if firstFailure == nil {
                        try? FileHandle.standardError.write(contentsOf: Data(
                            "ferry: \(error.message); is `ferry receive` running there? retrying for \(Int(config.connectWait)) s\n".utf8))
                    }
                    firstFailure = since
                    guard Date().timeIntervalSince(since) < config.connectWait else { throw error }
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                    continue
                }
                everConnected = true
                firstFailure = nil
                progress.start()
                do {
                    try await sender.run(connection)
                } catch {
                    // Only our own check of the receiver's key proves a wrong code (TLS 1.3
                    // shows the server's certificate first); a close, a reset or a relay that
                    // accepted and hung up is a network failure, and retried.
                    throw TransferChannel.classify(
                        error, helloSeen: sender.helloSeen.load(ordering: .relaxed), wrongCode: probe.keyMismatch)
                }
                var disks = sender.orderedSummaries
                for i in disks.indices where i < sentBefore.count { disks[i].dataBytes += sentBefore[i] }
                return TransferSummary(disks: disks, seconds: Date().timeIntervalSince(started))
            } catch let error as TransferError where error.kind == .network && config.retryFor > 0 && everConnected {
                // Reconnect and resume from the receiver's journal, until retryFor seconds
                // after the last time more became durable there.
                guard progress.remaining(config.retryFor) > 0 else {
                    throw TransferError(
                        .network, "\(error.message); nothing new became durable on the receiver in \(Int(config.retryFor)) s of retrying, giving up")
                }
                config.dropAfterBytes = nil
                for (i, sent) in sender.sent.enumerated() { sentBefore[i] += sent.data.load(ordering: .relaxed) }
                try? FileHandle.standardError.write(contentsOf: Data("ferry: \(error.message); reconnecting\n".utf8))
                try await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
    }
}

/// One connection's worth of sending. Every disk is described at once and streamed
/// as soon as the receiver is ready for it; the disks' workers share one pool of
/// request permits, so their extents interleave on the connection and memory stays
/// bounded by `config.workers × config.requestSize` whatever the number of disks.
final class SenderSession: Sendable {
    let sources: [any BlockDevice]
    let config: SendConfiguration
    let machine: Mutex<SenderStateMachine>
    let helloSeen = Atomic<Bool>(false)
    /// Per disk, filled in as each disk's last extent is sent.
    let summaries = Mutex<[UInt32: TransferSummary.Disk]>([:])
    /// Progress over all disks: acknowledged bytes (`done`) and what was sent.
    let counters = CopyCounters()
    /// What was sent, per disk.
    let sent: [CopyCounters]
    /// Bytes the receiver acknowledged as written, per disk.
    let acked: Mutex<[UInt64]>
    let permits: RequestPermits
    /// `--limit` caps the session's data rate, over all disks together.
    let limiter: RateLimiter?
    let reporter = Mutex<ProgressReporter?>(nil)
    let failure = Mutex<(any Error)?>(nil)
    /// Journaled segments a resuming receiver holds, per disk.
    let resume = Mutex<[UInt32: (segmentSize: UInt64, entries: [UInt64: [UInt8]])]>([:])
    /// When the receiver last got more durable (shared by the connections of one run).
    let progress: RetryClock
    /// Delta sync: the fine pass's block hashes in flight, and what each pass compared.
    let delta: DeltaSender

    init(sources: [any BlockDevice], config: SendConfiguration, progress: RetryClock = RetryClock()) {
        self.sources = sources
        self.config = config
        self.progress = progress
        // Every disk's workers feed the session's stage clock (the progress line's bottleneck).
        let stages = counters.stages
        sent = sources.map { _ in CopyCounters(stages: stages) }
        acked = Mutex(Array(repeating: 0, count: sources.count))
        permits = RequestPermits(config.workers)
        limiter = config.limit.map { RateLimiter(bytesPerSecond: $0) }
        delta = DeltaSender(disks: sources.count)
        // Delta sync trusts leaf equality, which a guest could forge for plain XXH3: --sync
        // offers no unkeyed xxh3, but keyed XXH3 (the receiver's key) unless sha256 was asked for.
        let offer = config.sync ? LeafHash.offerForSync(config.digest) : LeafHash.offer(config.digest)
        machine = Mutex(SenderStateMachine(
            diskCount: sources.count, capabilities: offer, diskSizes: sources.map(\.size)))
    }

    /// The per-disk summaries, in disk order.
    var orderedSummaries: [TransferSummary.Disk] {
        summaries.withLock { s in s.keys.sorted().compactMap { s[$0] } }
    }

    func run(_ connection: MessageChannel) async throws {
        defer { reporter.withLock { $0?.stop() } }
        defer { delta.close() }
        try await connection.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // A worker waiting for block hashes must not hold up the group's end.
                defer { group.cancelAll(); delta.close() }
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
        case .describeAll:
            startReporter()
            for (i, source) in sources.enumerated() {
                try await outbound.write(
                    .disk(DiskDescription(
                        index: UInt32(i), count: UInt32(sources.count), size: source.size,
                        sectorSize: UInt32(source.logicalSectorSize == 4096 ? 4096 : 512), name: source.name)))
            }
        case .ignoreForNow, .diskVerified:
            break
        case .blockHashes(let hashes):
            delta.deliver(hashes)
        case .resumeSegments(let list, let start) where machine.withLock({ $0.deltaDisks.contains(list.disk) }):
            delta.feed(list)
            if start { begin(list.disk, outbound, &group, connection) }
        case .resumeSegments(let list, let start):
            let offered = resume.withLock { r -> UInt64 in
                var disk = r[list.disk] ?? (segmentSize: UInt64(list.segmentSize), entries: [:])
                disk.segmentSize = UInt64(list.segmentSize)
                for e in list.entries { disk.entries[e.index] = e.digest }
                r[list.disk] = disk
                return UInt64(disk.entries.count) * disk.segmentSize
            }
            // What a reconnect finds journaled (the receiver checkpoints when a link drops).
            progress.record(disk: list.disk, durable: min(offered, sources[Int(list.disk)].size))
            if start { begin(list.disk, outbound, &group, connection) }
        case .startSending(let index, _):
            begin(index, outbound, &group, connection)
        case .progress(let ack):
            progress.record(disk: ack.disk, durable: ack.durable)
            let done = acked.withLock { a in
                a[Int(ack.disk)] = ack.written
                return a.reduce(0, +)
            }
            counters.done.store(done, ordering: .relaxed)
            counters.store(sumOf: sent)
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

    /// One progress line for the whole session: the total is every disk's size.
    private func startReporter() {
        let total = sources.reduce(UInt64(0)) { $0 + $1.size }
        let phase = sources.count == 1 ? "send \(sources[0].name)" : "send \(sources.count) disks"
        reporter.withLock {
            $0?.stop()
            $0 = ProgressReporter(mode: config.progress, phase: phase, total: total, counters: counters)
            $0?.start()
        }
    }

    /// Starts streaming disk `index` as a child task.
    private func begin(
        _ index: UInt32, _ outbound: NIOAsyncChannelOutboundWriter<Message>,
        _ group: inout ThrowingTaskGroup<Void, any Error>, _ connection: MessageChannel
    ) {
        group.addTask {
            // A failed stream (a source read error) must end the session now: tell the
            // receiver and close, or the inbound loop would wait for a reply forever.
            do {
                try await self.stream(index, outbound, connection)
            } catch {
                self.failure.withLock { if $0 == nil { $0 = error } }
                let reason = (error as? ProtocolError) ?? ProtocolError(.io, "\(error)")
                TransferChannel.closeTelling(connection.channel, reason)
                throw error
            }
        }
    }
}
