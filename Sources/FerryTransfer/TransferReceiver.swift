import FerryBinary
import FerryCopy
import FerryDisk
import FerryProtocol
import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `ferry receive`: listens, pairs, receives each disk into its target, verifies
/// every block and the disk digest, flushes and commits, and only then reports success.
public enum TransferReceiver {
    public static func run(_ config: ReceiveConfiguration) async throws -> TransferSummary {
        guard !config.targets.isEmpty else { throw TransferError(.usage, "name at least one target") }
        // Every target is checked and locked before anything listens (ReceiveTargets).
        var config = config
        let prepared = try ReceiveTargets.prepare(config.targets, overwrite: config.overwrite, explicitFormat: config.targetFormat)
        defer { prepared.release() }
        config.prepared = prepared
        let code = config.insecure ? nil : (config.code ?? PairingCode.random())
        let identity = try code.map { try PairingIdentity(code: $0, role: .receiver) }
        let registry = ConnectionRegistry(limiter: AttemptLimiter(burst: config.attemptBurst, perSecond: config.attemptsPerSecond))
        let listener = try await TransferChannel.listen(
            on: config.listen, identity: identity, registry: registry,
            idleTimeout: .milliseconds(Int64(config.idleTimeout * 1000)), pairingTimeout: .seconds(config.helloTimeout))
        let port = listener.channel.localAddress?.port ?? config.listen.port
        config.announce(ReceiverAnnouncement(listen: HostPort(host: config.listen.host, port: port), code: code))
        let loop = ReceiverAcceptLoop(config: config, server: listener.channel, registry: registry)
        return try await listener.executeThenClose { connections in
            try await loop.run(connections)
        }
    }
}

/// One connection's worth of receiving. Disks are opened as they are described and
/// received side by side; each is finished (flushed, verified, committed) as soon as
/// its `finish` arrives, while the others go on.
final class ReceiverSession: Sendable {
    let config: ReceiveConfiguration
    let connection: MessageChannel
    /// Progress over all disks (each disk counts its own bytes; this is their sum).
    let counters = CopyCounters()
    let helloSeen = Atomic<Bool>(false)
    /// Per disk: progress at the last ack and at the last checkpoint.
    let lastAck = Mutex<[UInt32: UInt64]>([:])
    let lastCheckpoint = Mutex<[UInt32: (bytes: UInt64, at: ContinuousClock.Instant)]>([:])
    /// When this receiver last made progress (shared by the connections of one run).
    let progress: RetryClock
    let disks = Mutex<[UInt32: ReceiverDisk]>([:])
    /// Disks verified and committed in this session: their journals stay until the
    /// whole session is done, whatever happens to the other disks.
    let committed = Mutex<Set<UInt32>>([])
    let reporter = Mutex<ProgressReporter?>(nil)
    /// Codecs this host can decompress, offered in our hello.
    let codecs: [CompressedExtent.Codec: Codec] = Dictionary(
        uniqueKeysWithValues: Codec.available().map { ($0.kind, $0) })
    /// The first failure of a write job.
    let failure = Mutex<(any Error)?>(nil)

    init(config: ReceiveConfiguration, connection: MessageChannel, progress: RetryClock = RetryClock()) {
        self.config = config
        self.connection = connection
        self.progress = progress
    }

    func run() async throws -> TransferSummary {
        let started = Date()
        progress.start()
        let channel = connection.channel
        channel.eventLoop.scheduleTask(in: .seconds(config.helloTimeout)) { [self] in
            if !self.helloSeen.load(ordering: .relaxed) { channel.close(promise: nil) }
        }
        defer { reporter.withLock { $0?.stop() } }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var machine = ReceiverStateMachine(
                    diskCount: config.targets.count,
                    capabilities: codecs.values.reduce(
                        into: LeafHash.offer(.xxh3).union(config.sync ? LeafHash.offerForSync(.xxh3) : [])
                    ) {
                        $0.insert(Codec.capability($1.kind))
                    })
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var inFlight = 0
                    func perform(_ action: ReceiverStateMachine.Action) async throws -> Bool {
                        switch action {
                        case .reply(let message):
                            try await outbound.write(message)
                        case .openDisk(let description):
                            let disk: ReceiverDisk
                            do {
                                // Keyed XXH3 when agreed: a key of our own for each disk, sent in `ready`.
                                let leaf = machine.keyedLeaves
                                    ? LeafHash.xxh3Keyed(LeafKey.random())
                                    : LeafHash.agreed(machine.capabilities, machine.peerCapabilities)
                                disk = try await open(
                                    description, leaf: leaf, delta: machine.hashExchange && leaf.resistsChosenData)
                            } catch let error as DiskError {
                                // The sender hears an I/O failure; here the error keeps its code
                                // (a device too small for the disk is 73, as in `ferry copy`).
                                try? await outbound.write(.error(ErrorMessage(ProtocolError(.io, error.description))))
                                throw TransferError(error)
                            }
                            // Only segments just re-read from the target are offered.
                            let recovered = disk.offered.withLock { $0 }
                            var flags = disk.knownZero ? DiskReady.targetIsZero : 0
                            let delta = disk.delta != nil && description.size > 0
                            if delta {
                                flags |= DiskReady.delta
                            } else if !recovered.isEmpty {
                                flags |= DiskReady.resume
                            }
                            let done = try await perform(
                                machine.diskOpened(description.index, flags: flags, leafKey: disk.digest.leaf.key?.bytes))
                            if delta {
                                // Hashed while the sender compares: its `same` and requests come in meanwhile.
                                group.addTask {
                                    do { try await self.listForDelta(disk, recovered, outbound) } catch {
                                        self.failed(error)
                                        throw error
                                    }
                                }
                            } else if !recovered.isEmpty, let journal = disk.journal {
                                try await sendSegments(recovered, segmentSize: journal.segmentSize, disk: description.index, outbound)
                            }
                            return done
                        case .write(let extent):
                            let disk = try opened(extent.disk)
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.write(extent) }
                        case .writeCompressed(let extent):
                            let disk = try opened(extent.disk)
                            guard let codec = codecs[extent.codec] else { throw internalError(extent.disk) }
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.write(extent, codec: codec) }
                        case .same(let segment):
                            let disk = try opened(segment.disk)
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.same(segment) }
                        case .hashBlocks(let request):
                            let disk = try opened(request.disk)
                            answer(request, disk, &group, outbound)
                        case .sameBlocks(let same):
                            let disk = try opened(same.disk)
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.sameBlocks(same) }
                        case .zero(let extent):
                            let disk = try opened(extent.disk)
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.zero(extent) }
                        case .finishDisk(let finish):
                            let disk = try opened(finish.disk)
                            // Every write in flight, of any disk, lands before this disk is flushed.
                            while try await group.next() != nil {}
                            inFlight = 0
                            try await finishDisk(disk, finish, outbound)
                            return try await perform(machine.diskFinished(finish.disk))
                        case .awaitNextDisk:
                            break
                        case .done:
                            // The whole session is verified and durable: no journal is needed any more.
                            for disk in disks.withLock({ Array($0.values) }) { disk.journal?.remove() }
                            return true
                        case .fail(let error):
                            try? await outbound.write(.error(ErrorMessage(error)))
                            throw TransferError(error, fromPeer: false)
                        case .peerFailed(let error):
                            throw TransferError(error, fromPeer: true)
                        }
                        return false
                    }
                    try await TransferChannel.pump(
                        inbound, outbound, failure: { self.failure.withLock { $0 } },
                        sawHello: { self.helloSeen.store(true, ordering: .relaxed) }, peer: "sender",
                        waits: counters.stages
                    ) { message in
                        try await perform(machine.received(message))
                    }
                }
            }
        } catch {
            let failure = TransferChannel.classify(error, helloSeen: helloSeen.load(ordering: .relaxed))
            await keepOrDiscard(after: failure)
            throw failure
        }
        let summary = disks.withLock { disks in
            disks.keys.sorted().compactMap { disks[$0] }.map { d in
                TransferSummary.Disk(
                    name: d.target.path, size: d.description.size, dataBytes: d.counters.data.load(ordering: .relaxed),
                    zeroBytes: d.counters.zero.load(ordering: .relaxed),
                    digest: (try? d.digest.finalize()) ?? DiskDigest(bytes: []))
            }
        }
        return TransferSummary(disks: summary, seconds: Date().timeIntervalSince(started))
    }

    /// After a failure: a dropped link or an interruption leaves every journal and
    /// partial target for a resume; anything else (bad data, a hostile peer) discards
    /// the unfinished ones. A committed disk — in this session, or in an earlier run and
    /// reopened — keeps its journal either way: the file stays under its final name
    /// regardless, and the journal (voided where it was being rewritten) lets a rerun
    /// prove it instead of refusing to overwrite it.
    private func keepOrDiscard(after failure: TransferError) async {
        let resumable = failure.kind == .network || failure.kind == .cancelled
        let done = committed.withLock { $0 }
        for (index, disk) in disks.withLock({ $0 }) {
            let wasCommitted = done.contains(index) || disk.journal?.committed != nil
            if resumable || wasCommitted, disk.journal != nil {
                if !done.contains(index) {
                    _ = try? await NIOThreadPool.singleton.runIfActive { try disk.checkpoint() }
                }
                progress.record(disk: index, durable: disk.durable.load(ordering: .relaxed))
                disk.keepJournal()
                try? disk.device.close()
            } else {
                disk.journal?.remove()
                disk.target.abandon()
            }
        }
    }

    private func opened(_ index: UInt32) throws(ProtocolError) -> ReceiverDisk {
        guard let disk = disks.withLock({ $0[index] }) else { throw internalError(index) }
        return disk
    }

    private func internalError(_ index: UInt32) -> ProtocolError {
        ProtocolError(.protocolViolation, "internal: extent for disk \(index), which is not open")
    }

    /// Runs `work` on the thread pool with at most `config.workers` jobs in flight
    /// (over all disks), then acknowledges progress. A job that fails records the
    /// error, tells the peer and closes the channel, which ends the inbound loop at
    /// once (it would otherwise wait for the next message, which a hostile peer may
    /// never send).
    private func bounded(
        _ inFlight: inout Int, _ group: inout ThrowingTaskGroup<Void, any Error>, _ disk: ReceiverDisk,
        _ outbound: NIOAsyncChannelOutboundWriter<Message>, _ work: @escaping @Sendable () throws -> Void
    ) async throws {
        if inFlight >= config.workers {
            _ = try await group.next()
            inFlight -= 1
        }
        inFlight += 1
        group.addTask {
            do {
                do {
                    // Not cancelled with the session: an extent verified and queued when the
                    // link drops is still written, and the checkpoint after the drop keeps it.
                    try await NIOThreadPool.singleton.runIfActive(eventLoop: self.connection.channel.eventLoop, work).get()
                } catch let error as DiskError {
                    throw ProtocolError(.io, error.description)
                }
                try await self.acknowledge(disk, outbound)
            } catch {
                self.failed(error)
                throw error
            }
        }
    }

    /// Every `checkpointBytes` of a disk's progress, or `checkpointInterval` seconds after
    /// the last checkpoint, flushes that disk and journals its completed segments; every
    /// `ackBytes`, and after a checkpoint that journaled something, tells the sender.
    private func acknowledge(_ disk: ReceiverDisk, _ outbound: NIOAsyncChannelOutboundWriter<Message>) async throws {
        refreshProgress()
        let index = disk.description.index
        let done = disk.counters.done.load(ordering: .relaxed)
        let now = ContinuousClock.now
        let checkpoint = lastCheckpoint.withLock { last -> Bool in
            // A disk's first write starts its clock.
            let previous = last[index] ?? (0, now)
            last[index] = previous
            let byBytes = done >= previous.bytes + config.checkpointBytes
            let byTime = done > previous.bytes && now - previous.at >= .milliseconds(Int64(config.checkpointInterval * 1000))
            guard byBytes || byTime else { return false }
            last[index] = (done, now)
            return true
        }
        var journaled: UInt64 = 0
        if checkpoint {
            journaled = try await NIOThreadPool.singleton.runIfActive { try disk.checkpoint() }
            progress.record(disk: index, durable: disk.durable.load(ordering: .relaxed))
        }
        let due = lastAck.withLock { last -> Bool in
            guard journaled > 0 || done >= last[index, default: 0] + config.ackBytes else { return false }
            last[index] = done
            return true
        }
        guard due else { return }
        let durable = disk.durable.load(ordering: .relaxed)
        try await outbound.write(.ack(Ack(disk: index, written: done, durable: durable)))
    }

    /// The session's progress is the sum of its disks'.
    func refreshProgress() {
        let all = disks.withLock { Array($0.values) }
        counters.done.store(all.reduce(0) { $0 + $1.counters.done.load(ordering: .relaxed) }, ordering: .relaxed)
        counters.store(sumOf: all.map(\.counters))
    }

}
