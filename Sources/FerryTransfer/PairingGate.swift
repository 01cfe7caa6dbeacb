import FerryProtocol
import Foundation
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// How one connection's attempt to pair ended, as far as this side can prove it.
///
/// Only `wrongCode` is a failed pairing attempt: a TLS peer that presented a key for
/// another code, or that rejected ours with a certificate alert. A port scan (connect
/// and close), a health check, an HTTP request, a TLS client without a certificate, a
/// relay that accepts and hangs up: none of them says anything about the code, and
/// none of them may count towards the receiver giving up.
enum PairingOutcome: Sendable, Equatable {
    /// TLS completed with the pinned key (`--insecure`: the first bytes are a ferry hello).
    case paired
    /// The peer proved it holds another pairing code.
    case wrongCode(String)
    /// Not a pairing attempt at all, with the reason (logged, never counted).
    case ignored(String)
}

/// What one connection showed before it paired: filled in by the channel handlers on
/// the event loop, read by the gate and by `TransferChannel.classify`.
final class PairingProbe: Sendable {
    struct State {
        var bytes = 0
        var firstBytes: [UInt8] = []
        /// Our pinned-key check saw a certificate for another key.
        var keyMismatch = false
        var outcome: PairingOutcome?
    }

    let state = Mutex(State())
    /// Completed exactly once: by the handshake, an error, the close, or the gate's timeout.
    let outcome: EventLoopFuture<PairingOutcome>
    private let promise: EventLoopPromise<PairingOutcome>

    /// No TLS (`--insecure`): the first thing on the wire is the hello frame.
    let insecure: Bool

    init(eventLoop: any EventLoop, insecure: Bool) {
        self.insecure = insecure
        promise = eventLoop.makePromise()
        outcome = promise.futureResult
    }

    var keyMismatch: Bool { state.withLock { $0.keyMismatch } }
    var isSettled: Bool { state.withLock { $0.outcome != nil } }

    func noteKeyMismatch() { state.withLock { $0.keyMismatch = true } }

    func noteBytes(_ buffer: ByteBuffer) {
        state.withLock { s in
            s.bytes += buffer.readableBytes
            if s.firstBytes.count < 16, let more = buffer.getBytes(at: buffer.readerIndex, length: min(16 - s.firstBytes.count, buffer.readableBytes)) {
                s.firstBytes += more
            }
        }
    }

    /// The first outcome wins; later ones are ignored.
    func settle(_ outcome: PairingOutcome) {
        let first = state.withLock { s -> Bool in
            guard s.outcome == nil else { return false }
            s.outcome = outcome
            return true
        }
        if first { promise.succeed(outcome) }
    }

    /// A one-line, truthful account of what a connection that never paired did.
    func unpairedReason(closed: Bool) -> String {
        let s = state.withLock { $0 }
        if s.bytes == 0 { return closed ? "connected and closed without sending anything (a port check?)" : "sent nothing" }
        let expected = insecure ? "a ferry hello" : "a TLS handshake"
        if !insecure, s.firstBytes.count >= 9, Array(s.firstBytes[5..<9]) == Array("FRRY".utf8) {
            return "is a ferry sender without pairing (--insecure); this receiver needs the pairing code"
        }
        if insecure || s.firstBytes.first != 0x16 {
            return "sent \(s.bytes) bytes that are not \(expected) (\(Self.preview(s.firstBytes)))"
        }
        return closed ? "began a TLS handshake and closed the connection before presenting a key" : "stalled in the TLS handshake"
    }

    /// The first bytes, printable ASCII as is and the rest as `\xNN`.
    static func preview(_ bytes: [UInt8]) -> String {
        "\"" + bytes.map { (0x20..<0x7F).contains($0) && $0 != 0x22 ? String(UnicodeScalar($0)) : "\\x" + String(format: "%02x", $0) }.joined() + "\""
    }
}

/// First in the pipeline: counts and keeps the first raw bytes, and settles the probe
/// when the connection closes before anything else did. With `--insecure` (no TLS) it
/// is also the whole gate: the first nine bytes must be a ferry hello frame's start.
final class PairingSniffer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let probe: PairingProbe

    init(probe: PairingProbe) { self.probe = probe }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !probe.isSettled {
            probe.noteBytes(unwrapInboundIn(data))
            if probe.insecure { checkHello() }
        }
        context.fireChannelRead(data)
    }

    /// `length (u32) | type 0x01 | "FRRY"`: a ferry sender's hello (docs/protocol.md).
    private func checkHello() {
        let first = probe.state.withLock { $0.firstBytes }
        guard first.count >= 9 else { return }
        if first[4] == Message.Kind.hello.rawValue, Array(first[5..<9]) == Array("FRRY".utf8) {
            probe.settle(.paired)
        } else {
            probe.settle(.ignored(probe.unpairedReason(closed: false)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        probe.settle(.ignored(probe.unpairedReason(closed: true)))
        context.fireChannelInactive()
    }
}

/// Right after the TLS handler: settles the probe when the handshake completes, or
/// says why it failed.
final class PairingWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let probe: PairingProbe
    let role: PairingIdentity.Role

    init(probe: PairingProbe, role: PairingIdentity.Role) {
        self.probe = probe
        self.role = role
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls { probe.settle(.paired) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !probe.isSettled { probe.settle(Self.outcome(of: error, probe: probe, role: role)) }
        context.fireErrorCaught(error)
    }

    /// A handshake error, sorted: only a key for another code is a wrong code.
    static func outcome(of error: any Error, probe: PairingProbe, role: PairingIdentity.Role) -> PairingOutcome {
        let peer = role == .receiver ? "sender" : "receiver"
        if probe.keyMismatch {
            return .wrongCode("the \(peer) presented a key that does not match this pairing code")
        }
        let reason = TransferChannel.tlsReason(error)
        // The peer checked our certificate first and refused it: a ferry peer whose code
        // differs (TLS 1.3 sends the server's certificate before the client's).
        if role == .receiver, reason.hasSuffix("ALERT_CERTIFICATE_UNKNOWN") || reason.hasSuffix("ALERT_BAD_CERTIFICATE") {
            return .wrongCode("the sender rejected this receiver's key (\(reason)): it holds a different pairing code")
        }
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            return .ignored(probe.unpairedReason(closed: true))
        }
        let first = probe.state.withLock { $0.firstBytes.first }
        if let first, first != 0x16 { return .ignored(probe.unpairedReason(closed: false)) }
        return .ignored("\(TransferChannel.handshakeFailure(error)) before a key was presented")
    }
}

/// Pairing attempts allowed per peer address: a token bucket of `burst` attempts,
/// refilled at `perSecond`. The code has 80 bits, so this is not what stops guessing
/// (docs/protocol.md); it bounds the handshakes a flood can make the receiver do.
struct AttemptLimiter: Sendable {
    var burst: Double
    var perSecond: Double
    private var buckets: [String: (tokens: Double, at: Double)] = [:]

    init(burst: Int, perSecond: Double) {
        self.burst = Double(max(1, burst))
        self.perSecond = perSecond
    }

    /// True when `address` may attempt a handshake at time `now` (seconds, monotonic).
    mutating func admit(_ address: String, at now: Double) -> Bool {
        // Forget addresses whose bucket has refilled: the table stays as small as the flood's rate.
        if buckets.count > 1024 {
            buckets = buckets.filter { min(burst, $0.value.tokens + (now - $0.value.at) * perSecond) < burst }
        }
        let bucket = buckets[address] ?? (tokens: burst, at: now)
        var tokens = min(burst, bucket.tokens + (now - bucket.at) * perSecond)
        let admitted = tokens >= 1
        if admitted { tokens -= 1 }
        buckets[address] = (tokens, now)
        return admitted
    }
}
