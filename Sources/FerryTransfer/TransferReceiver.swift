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
        MemoryTuning.apply()
        let code = config.insecure ? nil : (config.code ?? PairingCode.random())
        let identity = try code.map { try PairingIdentity(code: $0, role: .receiver) }
        let listener = try await TransferChannel.listen(on: config.listen, identity: identity)
        let port = listener.channel.localAddress?.port ?? config.listen.port
        config.announce(ReceiverAnnouncement(listen: HostPort(host: config.listen.host, port: port), code: code))

        var failures = 0
        let generation = Atomic<Int>(0)
        var lastNetworkError: TransferError?
        return try await listener.executeThenClose { connections in
            for try await connection in connections {
                generation.add(1, ordering: .relaxed)
                do {
                    return try await Session(config: config, connection: connection).run()
                } catch let error as TransferError where error.kind == .network && config.retryFor > 0 {
                    // The link dropped: the journal keeps what is durable; wait for the
                    // sender to reconnect (it retries by itself) for retryFor seconds.
                    lastNetworkError = error
                    let mine = generation.load(ordering: .relaxed)
                    let server = listener.channel
                    server.eventLoop.scheduleTask(in: .seconds(Int64(config.retryFor))) {
                        if generation.load(ordering: .relaxed) == mine { server.close(promise: nil) }
                    }
                    FileHandle.standardError.write(
                        Data("ferry: \(error.message); waiting up to \(Int(config.retryFor)) s for the sender to reconnect\n".utf8))
                } catch let error as TransferError where error.kind == .authentication {
                    failures += 1
                    if failures >= config.maxAuthFailures {
                        throw TransferError(
                            .authentication, "\(failures) failed pairing attempts; giving up. Last: \(error.message)")
                    }
                    FileHandle.standardError.write(Data("ferry: \(error.message); waiting for another attempt\n".utf8))
                }
            }
            throw lastNetworkError ?? TransferError(.network, "the listener closed before a sender connected")
        }
    }
}

/// One connection's worth of receiving.
private final class Session: Sendable {
    let config: ReceiveConfiguration
    let connection: MessageChannel
    let counters = CopyCounters()
    let helloSeen = Atomic<Bool>(false)
    let lastAck = Mutex<UInt64>(0)
    let lastCheckpoint = Mutex<UInt64>(0)
    let disks = Mutex<[ReceiverDisk]>([])
    /// Codecs this host can decompress, offered in our hello.
    let codecs: [CompressedExtent.Codec: Codec] = Dictionary(
        uniqueKeysWithValues: Codec.available().map { ($0.kind, $0) })
    /// The first failure of a write job.
    let failure = Mutex<(any Error)?>(nil)

    init(config: ReceiveConfiguration, connection: MessageChannel) {
        self.config = config
        self.connection = connection
    }

    func run() async throws -> TransferSummary {
        let started = Date()
        let channel = connection.channel
        channel.eventLoop.scheduleTask(in: .seconds(config.helloTimeout)) { [self] in
            if !self.helloSeen.load(ordering: .relaxed) { channel.close(promise: nil) }
        }
        var reporter: ProgressReporter?
        defer { reporter?.stop() }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var machine = ReceiverStateMachine(
                    diskCount: config.targets.count,
                    capabilities: codecs.values.reduce(into: LeafHash.offer(.xxh3)) { $0.insert(Codec.capability($1.kind)) })
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var inFlight = 0
                    var current: ReceiverDisk?
                    func perform(_ action: ReceiverStateMachine.Action) async throws -> Bool {
                        switch action {
                        case .reply(let message):
                            try await outbound.write(message)
                        case .openDisk(let description):
                            let disk = try await open(
                                description, leaf: LeafHash.agreed(machine.capabilities, machine.peerCapabilities))
                            current = disk
                            reporter?.stop()
                            reporter = ProgressReporter(
                                mode: config.progress, phase: "receive \(disk.target.path)", total: description.size,
                                counters: counters)
                            reporter?.start()
                            let recovered = disk.journal?.recovered ?? [:]
                            var flags = disk.knownZero ? DiskReady.targetIsZero : 0
                            if !recovered.isEmpty { flags |= DiskReady.resume }
                            let done = try await perform(machine.diskOpened(flags: flags))
                            if !recovered.isEmpty, let journal = disk.journal {
                                try await sendSegments(recovered, segmentSize: journal.segmentSize, disk: description.index, outbound)
                            }
                            return done
                        case .write(let extent):
                            guard let disk = current else { throw internalError() }
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.write(extent) }
                        case .writeCompressed(let extent):
                            guard let disk = current, let codec = codecs[extent.codec] else { throw internalError() }
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.write(extent, codec: codec) }
                        case .same(let segment):
                            guard let disk = current else { throw internalError() }
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.same(segment) }
                        case .zero(let extent):
                            guard let disk = current else { throw internalError() }
                            try await bounded(&inFlight, &group, disk, outbound) { try disk.zero(extent) }
                        case .finishDisk(let finish):
                            guard let disk = current else { throw internalError() }
                            while try await group.next() != nil {}
                            inFlight = 0
                            try await finishDisk(disk, finish, outbound)
                            return try await perform(machine.diskFinished())
                        case .awaitNextDisk:
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
                    try await TransferChannel.pump(
                        inbound, outbound, failure: { self.failure.withLock { $0 } },
                    sawHello: { self.helloSeen.store(true, ordering: .relaxed) }, peer: "sender"
                    ) { message in
                        try await perform(machine.received(message))
                    }
                }
            }
        } catch {
            let failure = TransferChannel.classify(error, helloSeen: helloSeen.load(ordering: .relaxed))
            for disk in disks.withLock({ $0 }) {
                // A dropped link or an interruption leaves the journal and the partial
                // target for a resume; anything else (bad data, a hostile peer) does not.
                let resumable = failure.kind == .network || failure.kind == .cancelled
                if resumable, let journal = disk.journal {
                    try? await NIOThreadPool.singleton.runIfActive { try disk.checkpoint() }
                    journal.closeKeeping()
                    try? disk.device.close()
                } else {
                    disk.journal?.remove()
                    disk.target.abandon()
                }
            }
            throw failure
        }
        let summary = disks.withLock { disks in
            disks.map { d in
                TransferSummary.Disk(
                    name: d.target.path, size: d.description.size, dataBytes: 0, zeroBytes: 0,
                    digest: (try? d.digest.finalize()) ?? DiskDigest(bytes: []))
            }
        }
        return TransferSummary(disks: summary, seconds: Date().timeIntervalSince(started))
    }

    private func internalError() -> ProtocolError {
        ProtocolError(.protocolViolation, "internal: extent without an open disk")
    }

    /// Runs `work` on the thread pool with at most `config.workers` jobs in flight,
    /// then acknowledges progress. A job that fails records the error, tells the peer
    /// and closes the channel, which ends the inbound loop at once (it would otherwise
    /// wait for the next message, which a hostile peer may never send).
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
                    try await NIOThreadPool.singleton.runIfActive(work)
                } catch let error as DiskError {
                    throw ProtocolError(.io, error.description)
                }
                try await self.acknowledge(disk, outbound)
            } catch {
                let first = self.failure.withLock { recorded -> Bool in
                    defer { if recorded == nil { recorded = error } }
                    return recorded == nil
                }
                if first, let error = error as? ProtocolError {
                    try? await outbound.write(.error(ErrorMessage(error)))
                }
                self.connection.channel.close(promise: nil)
                throw error
            }
        }
    }

    private func acknowledge(_ disk: ReceiverDisk, _ outbound: NIOAsyncChannelOutboundWriter<Message>) async throws {
        let done = counters.done.load(ordering: .relaxed)
        let due = lastAck.withLock { last -> Bool in
            guard done >= last + config.ackBytes else { return false }
            last = done
            return true
        }
        guard due else { return }
        if done >= lastCheckpoint.withLock({ $0 }) + config.checkpointBytes {
            lastCheckpoint.withLock { $0 = done }
            try await NIOThreadPool.singleton.runIfActive { try disk.checkpoint() }
        }
        let durable = disk.durable.load(ordering: .relaxed)
        try await outbound.write(.ack(Ack(disk: disk.description.index, written: done, durable: durable)))
    }

    private func open(_ description: DiskDescription, leaf: LeafHash) async throws -> ReceiverDisk {
        let path = config.targets[Int(description.index)]
        let counters = counters
        counters.done.store(0, ordering: .relaxed)
        counters.data.store(0, ordering: .relaxed)
        counters.zero.store(0, ordering: .relaxed)
        lastAck.withLock { $0 = 0 }
        lastCheckpoint.withLock { $0 = 0 }
        let disk = try await NIOThreadPool.singleton.runIfActive { [config] in
            do {
                return try Self.openResumable(path, description, config, counters, leaf)
            } catch let error as DiskError {
                throw ProtocolError(.io, error.description)
            }
        }
        disks.withLock { $0.append(disk) }
        return disk
    }

    /// Opens the target, continuing an interrupted transfer when a journal for this
    /// disk (same size and name) and its partial file are there.
    private static func openResumable(
        _ path: String, _ description: DiskDescription, _ config: ReceiveConfiguration, _ counters: CopyCounters,
        _ leaf: LeafHash
    ) throws -> ReceiverDisk {
        guard path != "-", path != "null:" else {
            let target = try LocalTarget.open(path, size: description.size, overwrite: config.overwrite)
            return try ReceiverDisk(description: description, target: target, counters: counters, journal: nil, leaf: leaf)
        }
        let inPlace = LocalDisk.isBlockDevice(path)
        let journalPath = ResumeJournal.path(for: path, inPlace: inPlace)
        var target: LocalTarget?
        if FileManager.default.fileExists(atPath: journalPath) {
            target = inPlace
                ? try LocalTarget.open(path, size: description.size, overwrite: config.overwrite)
                : try LocalTarget.reopenPartial(path, size: description.size)
        }
        if target == nil { unlink(journalPath) }
        let opened = try target ?? LocalTarget.open(path, size: description.size, overwrite: config.overwrite)
        let journal = try ResumeJournal(
            path: journalPath, segmentSize: config.segmentSize, diskSize: description.size, name: description.name,
            leaf: leaf)
        if !journal.recovered.isEmpty {
            FileHandle.standardError.write(Data(
                "ferry: resuming \(path): \(journal.recovered.count) segment(s) were written before; the sender will check them against the source\n".utf8))
        }
        return try ReceiverDisk(description: description, target: opened, counters: counters, journal: journal, leaf: leaf)
    }

    private func sendSegments(
        _ recovered: [UInt64: [UInt8]], segmentSize: Int, disk: UInt32, _ outbound: NIOAsyncChannelOutboundWriter<Message>
    ) async throws {
        let entries = recovered.keys.sorted().map { SegmentList.Entry(index: $0, digest: recovered[$0] ?? []) }
        var start = 0
        repeat {
            let end = min(entries.count, start + SegmentList.maxEntries)
            try await outbound.write(.segments(SegmentList(
                disk: disk, segmentSize: UInt32(segmentSize), isFinal: end == entries.count,
                entries: Array(entries[start..<end]))))
            start = end
        } while start < entries.count
    }

    private func finishDisk(_ disk: ReceiverDisk, _ finish: Finish, _ outbound: NIOAsyncChannelOutboundWriter<Message>) async throws {
        let ours: DiskDigest
        do {
            ours = try await NIOThreadPool.singleton.runIfActive { try disk.finish() }
        } catch let error as DiskError {
            throw ProtocolError(.io, error.description)
        } catch let error as DigestError {
            throw ProtocolError(.verification, error.description)
        }
        guard ours.bytes == finish.digest else {
            try? await outbound.write(.result(DiskResult(disk: finish.disk, status: .mismatch, digest: ours.bytes)))
            throw ProtocolError(
                .verification,
                "disk \(finish.disk): digest \(ours.hex) does not match the sender's \(finish.digest.hexString)")
        }
        do {
            try await NIOThreadPool.singleton.runIfActive { try disk.target.commit() }
            disk.journal?.remove()
        } catch let error as DiskError {
            throw ProtocolError(.io, error.description)
        }
        let size = disk.description.size
        try await outbound.write(.ack(Ack(disk: finish.disk, written: size, durable: size)))
        try await outbound.write(.result(DiskResult(disk: finish.disk, status: .verified, digest: ours.bytes)))
    }
}
