import FerryProtocol
import Foundation
import NIOCore
import Synchronization

/// Every accepted connection from the moment its pipeline exists until someone owns it.
///
/// An `NIOAsyncChannel` must be finished (`executeThenClose`) by whoever holds it: one
/// dropped unfinished traps in `NIOAsyncWriter`'s deinit. Connections accepted while a
/// session runs wait in the listener's stream, and one whose set-up finishes as the
/// listener closes is never delivered at all; the registry keeps a reference to each,
/// so `shutdown()` can finish the ones nobody claimed, and refuses new ones after it.
final class ConnectionRegistry: Sendable {
    private struct State {
        var closed = false
        var unclaimed: [ObjectIdentifier: (channel: MessageChannel, probe: PairingProbe)] = [:]
        /// Claimed and still waiting to pair: closed at shutdown so their gates end.
        var pairing: [ObjectIdentifier: (channel: any Channel, probe: PairingProbe)] = [:]
    }

    private let state = Mutex(State())
    private let limiter: Mutex<AttemptLimiter>

    init(limiter: AttemptLimiter) { self.limiter = Mutex(limiter) }

    /// Whether a connection from `address` may attempt a handshake now.
    func admit(_ address: String, at now: Double) -> Bool {
        limiter.withLock { $0.admit(address, at: now) }
    }

    /// Makes the channel (on its event loop, in the child initializer) and enters it;
    /// after `shutdown()` it throws instead, so no channel is made that nobody finishes.
    func enter(_ raw: any Channel, _ probe: PairingProbe, _ make: () throws -> MessageChannel) throws -> MessageChannel {
        try state.withLock { s in
            guard !s.closed else {
                // Never delivered, so NIO would not close it: close it here.
                raw.close(promise: nil)
                throw ChannelError.ioOnClosedChannel
            }
            let channel = try make()
            s.unclaimed[ObjectIdentifier(channel.channel)] = (channel, probe)
            return channel
        }
    }

    /// Takes ownership of a connection the listener delivered; nil if shutdown took it.
    func claim(_ channel: MessageChannel) -> PairingProbe? {
        state.withLock { s in
            let id = ObjectIdentifier(channel.channel)
            guard let entry = s.unclaimed.removeValue(forKey: id) else { return nil }
            s.pairing[id] = (channel.channel, entry.probe)
            return entry.probe
        }
    }

    /// The gate is done with the pairing stage of `channel`.
    func paired(_ channel: MessageChannel) {
        _ = state.withLock { $0.pairing.removeValue(forKey: ObjectIdentifier(channel.channel)) }
    }

    /// No more connections: closes those still pairing and returns the unclaimed ones,
    /// which the caller must finish.
    func shutdown() -> [MessageChannel] {
        let (pairing, unclaimed) = state.withLock { s in
            s.closed = true
            defer { s.unclaimed = [:] }
            return (Array(s.pairing.values), s.unclaimed.values.map(\.channel))
        }
        for entry in pairing {
            entry.probe.settle(.ignored("had not paired when the receiver stopped; closed"))
            entry.channel.close(promise: nil)
        }
        return unclaimed
    }
}

extension MessageChannel {
    /// Finishes and closes a connection nobody will use (see `ConnectionRegistry`).
    func discard() async {
        try? await executeThenClose { _, _ in }
    }

    /// "10.0.0.5:51234", for log lines.
    var peerDescription: String {
        guard let address = channel.remoteAddress else { return "a peer" }
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// The receiver's accept loop: every connection pairs (or fails to) on its own, side by
/// side, so an idle socket or a slow handshake holds up nobody; connections that paired
/// run one session at a time, in the order they paired.
///
/// ```
///  listener ─▶ claim ─▶ gate (one task per connection) ─┬─ paired ─▶ sessions, one at a time
///                                                       ├─ wrong code ─▶ counted; give up at the limit
///                                                       └─ anything else ─▶ one log line, ignored
/// ```
/// It ends when a session succeeds or fails for good, when `maxAuthFailures`
/// connections proved a wrong code, or when `retryFor` passed after a dropped link
/// without the sender back. Every connection is finished before it returns.
final class ReceiverAcceptLoop: Sendable {
    let config: ReceiveConfiguration
    let server: any Channel
    let registry: ConnectionRegistry
    /// The last time more became durable, over every session: `--retry-for` counts from it.
    let progress = RetryClock()
    private let state = Mutex(LoopState())

    private struct LoopState {
        var failures = 0
        /// The listener is closing: paired connections still queued are not started.
        var stopping = false
        var gaveUp: TransferError?
        var lastNetworkError: TransferError?
        /// Sessions started, to tell whether the sender came back within `retryFor`.
        var sessions = 0
    }

    init(config: ReceiveConfiguration, server: any Channel, registry: ConnectionRegistry) {
        self.config = config
        self.server = server
        self.registry = registry
    }

    func run(_ connections: NIOAsyncChannelInboundStream<MessageChannel>) async throws -> TransferSummary {
        let (paired, pairedIn) = AsyncStream.makeStream(of: MessageChannel.self)
        async let sessions = runSessions(paired)
        await withTaskGroup(of: Void.self) { gates in
            do {
                for try await connection in connections {
                    guard let probe = registry.claim(connection) else { continue }
                    gates.addTask { await self.gate(connection, probe, pairedIn) }
                }
            } catch {
                log("the listener failed: \(error)")
            }
            for connection in registry.shutdown() { gates.addTask { await connection.discard() } }
        }
        pairedIn.finish()
        return try await sessions
    }

    /// Waits for one connection to pair, then queues it for a session or closes it.
    private func gate(_ connection: MessageChannel, _ probe: PairingProbe, _ paired: AsyncStream<MessageChannel>.Continuation) async {
        let peer = connection.peerDescription  // while the channel is open
        let outcome = (try? await probe.outcome.get()) ?? .ignored("closed")
        registry.paired(connection)
        switch outcome {
        case .paired:
            if state.withLock({ $0.stopping }) {
                await connection.discard()
            } else if case .terminated = paired.yield(connection) {
                await connection.discard()
            }
        case .ignored(let reason):
            await connection.discard()
            log("\(peer) \(reason); not counted as a pairing attempt, still waiting")
        case .wrongCode(let reason):
            await connection.discard()
            let (failures, gaveUp) = state.withLock { s -> (Int, Bool) in
                s.failures += 1
                guard s.failures >= config.maxAuthFailures, s.gaveUp == nil else { return (s.failures, false) }
                s.gaveUp = TransferError(
                    .authentication, "\(s.failures) connections proved a wrong pairing code; giving up. Last: \(peer): \(reason)")
                return (s.failures, true)
            }
            if gaveUp {
                stop()
            } else {
                log("\(peer): \(reason) (wrong code \(failures) of \(config.maxAuthFailures) allowed); waiting for another attempt")
            }
        }
    }

    /// Runs sessions for paired connections in turn; closes the rest once it is done.
    private func runSessions(_ paired: AsyncStream<MessageChannel>) async throws -> TransferSummary {
        var outcome: Result<TransferSummary, any Error>?
        for await connection in paired {
            guard outcome == nil, !state.withLock({ $0.stopping }) else {
                await connection.discard()
                continue
            }
            let mine = state.withLock { s -> Int in
                s.sessions += 1
                return s.sessions
            }
            do {
                outcome = .success(try await ReceiverSession(config: config, connection: connection, progress: progress).run())
                stop()
            } catch let error as TransferError where error.kind == .network && config.retryFor > 0 {
                // The link dropped: the journal keeps what is durable; wait for the
                // sender to reconnect (it retries by itself), until retryFor seconds
                // after the last progress (reconnects that make none do not extend it).
                let left = progress.remaining(config.retryFor)
                guard left > 0 else {
                    outcome = .failure(TransferError(
                        .network,
                        "\(error.message); nothing new became durable in \(Int(config.retryFor)) s of retrying, giving up (the journal is kept for a rerun)"))
                    stop()
                    continue
                }
                state.withLock { $0.lastNetworkError = error }
                server.eventLoop.scheduleTask(in: .milliseconds(Int64(left * 1000))) {
                    if self.state.withLock({ $0.sessions }) == mine { self.stop() }
                }
                log("\(error.message); waiting up to \(Int(left.rounded(.up))) s for the sender to reconnect")
            } catch {
                outcome = .failure(error)
                stop()
            }
        }
        if let outcome { return try outcome.get() }
        let s = state.withLock { $0 }
        throw s.gaveUp ?? s.lastNetworkError ?? TransferError(.network, "the listener closed before a sender connected")
    }

    /// Stops accepting: the accept loop ends once the listener has closed.
    private func stop() {
        state.withLock { $0.stopping = true }
        server.close(promise: nil)
    }

    private func log(_ line: String) {
        try? FileHandle.standardError.write(contentsOf: Data("ferry receive: \(line)\n".utf8))
    }
}
