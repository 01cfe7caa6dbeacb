import FerryCopy
public import FerryProtocol
import Foundation
public import NIOCore
import NIOPosix
import NIOSSL

/// A framed, optionally TLS-protected connection carrying `Message`s.
public typealias MessageChannel = NIOAsyncChannel<Message, Message>

/// Where a receiver listens or a sender connects.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    /// ferry's default port: the one the `nc -l -p 9000` runbook already opened in firewalls.
    public static let defaultPort = 9000

    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST`, `HOST:PORT`, `:PORT`, `[V6]:PORT`.
    public init(parsing text: String, defaultHost: String) throws(TransferError) {
        var host = text
        var port = Self.defaultPort
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let p = Int(rest.dropFirst()) else { throw TransferError(.usage, "bad port in '\(text)'") }
                port = p
            }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = String(text[..<colon])
            guard let p = Int(text[text.index(after: colon)...]) else { throw TransferError(.usage, "bad port in '\(text)'") }
            port = p
        }
        guard (0...65535).contains(port) else { throw TransferError(.usage, "port \(port) is out of range") }
        self.host = host.isEmpty ? defaultHost : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

enum TransferChannel {
    /// Socket buffers large enough for one stream to fill a 10 GbE link with some latency.
    static let socketBuffer = 4 << 20

    /// Each side pings every `pingInterval`; a side that waits for the peer and hears
    /// nothing at all for `idleTimeout` treats the link as dead and closes, which the
    /// retry logic turns into a reconnect and resume (TCP alone may wait a quarter of
    /// an hour). Waiting is measured by `LivenessMonitor`: time in which this side's own
    /// consumer holds the reads (back-pressure from a slow target) does not count.
    static let pingInterval: TimeAmount = .seconds(5)
    static let idleTimeout: TimeAmount = .seconds(30)

    /// The ping interval for an idle timeout: six pings per timeout, at most every 5 s.
    static func pingInterval(for idle: TimeAmount) -> TimeAmount {
        min(pingInterval, .nanoseconds(max(idle.nanoseconds / 6, 1_000_000)))
    }

    /// Installs the liveness check, the pairing probe's handlers, TLS (unless insecure)
    /// and the framing on a fresh channel. A channel that `admitted` is false for gets
    /// no TLS handler at all: its probe is settled at once and the gate closes it.
    static func configure(
        _ channel: any Channel, identity: PairingIdentity?, probe: PairingProbe, idleTimeout: TimeAmount = idleTimeout,
        admitted: Bool = true
    ) throws -> MessageChannel {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(LivenessHandler(timeout: idleTimeout))
        try sync.addHandler(PairingSniffer(probe: probe))
        if !admitted {
            probe.settle(.ignored("over the limit of pairing attempts from this address (about one a second); closed unanswered"))
        } else if let identity {
            try sync.addHandler(identity.makeHandler(probe: probe))
            try sync.addHandler(PairingWatcher(probe: probe, role: identity.role))
        }
        try sync.addHandler(MessageFrameReader())
        try sync.addHandler(MessageFrameWriter())
        let every = pingInterval(for: idleTimeout)
        let pinger = channel.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            channel.writeAndFlush(Message.ping, promise: nil)
        }
        channel.closeFuture.whenComplete { _ in
            pinger.cancel()
            probe.settle(.ignored(probe.unpairedReason(closed: true)))
        }
        return try MessageChannel(
            wrappingChannelSynchronously: channel,
            configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 16)))
    }

    /// Connects and starts the handshake; the probe tells later whether a failure proved a wrong code.
    static func connect(
        to address: HostPort, identity: PairingIdentity?, idleTimeout: TimeAmount = idleTimeout
    ) async throws -> (MessageChannel, PairingProbe) {
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_sndbuf), value: socketBuffer)
                .channelOption(.socketOption(.so_rcvbuf), value: socketBuffer)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .connectTimeout(.seconds(10))
                .connect(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let probe = PairingProbe(eventLoop: channel.eventLoop, insecure: identity == nil)
                        return (try configure(channel, identity: identity, probe: probe, idleTimeout: idleTimeout), probe)
                    }
                }
        } catch {
            throw TransferError(.network, "cannot connect to \(address): \(reason(error))")
        }
    }

    /// "connection refused", not NIO's nested description of every attempt.
    static func reason(_ error: any Error) -> String {
        var underlying: any Error = error
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first { underlying = first.error }
        if let e = underlying as? IOError { return String(cString: strerror(e.errnoCode)).lowercased() }
        if let e = underlying as? ChannelError, case .connectTimeout = e { return "no answer (timed out)" }
        return "\(underlying)"
    }

    typealias Listener = NIOAsyncChannel<MessageChannel, Never>

    /// Listens; every accepted connection is configured and entered in `registry`
    /// (which owns it until the accept loop claims it), after the registry's limiter
    /// decided whether it may attempt a handshake. A connection that does not pair within
    /// `pairingTimeout` is closed.
    static func listen(
        on address: HostPort, identity: PairingIdentity?, registry: ConnectionRegistry,
        idleTimeout: TimeAmount = idleTimeout, pairingTimeout: TimeAmount
    ) async throws -> Listener {
        do {
            return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 8)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.so_sndbuf), value: socketBuffer)
                .childChannelOption(.socketOption(.so_rcvbuf), value: socketBuffer)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let peer = channel.remoteAddress?.ipAddress ?? "?"
                        let now = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
                        let admitted = registry.admit(peer, at: now)
                        let probe = PairingProbe(eventLoop: channel.eventLoop, insecure: identity == nil)
                        let timeout = channel.eventLoop.scheduleTask(in: pairingTimeout) {
                            guard !probe.isSettled else { return }
                            probe.settle(.ignored("\(probe.unpairedReason(closed: false)) for \(pairingTimeout.nanoseconds / 1_000_000_000) s; closed"))
                            channel.close(promise: nil)
                        }
                        channel.closeFuture.whenComplete { _ in timeout.cancel() }
                        return try registry.enter(channel, probe) {
                            try configure(channel, identity: identity, probe: probe, idleTimeout: idleTimeout, admitted: admitted)
                        }
                    }
                }
        } catch {
            throw TransferError(.network, "cannot listen on \(address): \(error)")
        }
    }

    /// The short reason inside a TLS error ("CERTIFICATE_UNKNOWN"), not BoringSSL's whole trace.
    static func tlsReason(_ error: any Error) -> String {
        let text = "\(error)"
        if let range = text.range(of: #"OPENSSL_internal:[A-Z0-9_]+"#, options: .regularExpression) {
            return String(text[range].dropFirst("OPENSSL_internal:".count))
        }
        if let e = error as? NIOSSLError, case .uncleanShutdown = e { return "closed without a TLS close" }
        return "TLS handshake failed"
    }

    /// A failed handshake in one line: "the TLS handshake failed (NO_SHARED_CIPHER)", or
    /// for a connection the peer simply dropped, that.
    static func handshakeFailure(_ error: any Error) -> String {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            return "the connection closed during the TLS handshake"
        }
        let reason = tlsReason(error)
        return reason == "TLS handshake failed" ? "the TLS handshake failed" : "the TLS handshake failed (\(reason))"
    }

    /// Classifies a failure seen on a channel. Only a handshake that proved a wrong key
    /// (`wrongCode`) is an authentication failure: a connection closed or reset before
    /// or during the handshake — a relay that accepted while the receiver restarts, a
    /// receiver refusing attempts for a moment — is a network failure, and retried.
    static func classify(_ error: any Error, helloSeen: Bool, wrongCode: Bool = false) -> TransferError {
        if let e = error as? TransferError { return e }
        if let e = error as? ProtocolError { return TransferError(e, fromPeer: false) }
        if wrongCode {
            return TransferError(
                .authentication, "pairing failed: the receiver's key does not match this pairing code (it holds a different code)")
        }
        if error is NIOSSLError || error is BoringSSLError {
            return helloSeen
                ? TransferError(.network, "the encrypted channel failed: \(Self.tlsReason(error))")
                : TransferError(.network, "\(Self.handshakeFailure(error)) before a key was presented (a relay without its receiver, or a receiver refusing attempts for a moment?)")
        }
        if !helloSeen, Self.isClosedByPeer(error) {
            return TransferError(.network, "the peer (or a relay in front of it) closed the connection before the session began")
        }
        return TransferError(.network, "connection lost: \(error)")
    }

    /// A reset, broken pipe or end of stream: the peer went away, as opposed to a timeout.
    static func isClosedByPeer(_ error: any Error) -> Bool {
        if let e = error as? IOError { return e.errnoCode == ECONNRESET || e.errnoCode == EPIPE }
        if let e = error as? ChannelError {
            switch e {
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed: return true
            default: return false
            }
        }
        return false
    }
}

extension TransferChannel {
    /// Feeds each inbound message to `handle` until it returns true (session complete).
    /// Framing errors are reported to the peer before closing; when the stream ends
    /// because a worker failed (and closed the channel), that worker's error wins.
    static func pump(
        _ inbound: NIOAsyncChannelInboundStream<Message>, _ outbound: NIOAsyncChannelOutboundWriter<Message>,
        failure: () -> (any Error)?, sawHello: () -> Void, peer: String, waits: StageTimes? = nil,
        _ handle: (Message) async throws -> Bool
    ) async throws {
        do {
            var messages = inbound.makeAsyncIterator()
            while true {
                // Time spent here, with nothing to do until the peer's next message
                // arrives, is the network's share of a receiver's time.
                let asked = DispatchTime.now().uptimeNanoseconds
                guard let message = try await messages.next() else { break }
                waits?.add(.network, Double(DispatchTime.now().uptimeNanoseconds - asked) / 1e9)
                if case .hello = message { sawHello() }
                if try await handle(message) { return }
            }
        } catch let error as ProtocolError {
            // A worker's failure (it closed the channel) explains whatever the stream did next.
            if let failure = failure() { throw failure }
            try? await outbound.write(.error(ErrorMessage(error)))
            throw error
        } catch {
            if let failure = failure() { throw failure }
            throw error
        }
        if let failure = failure() { throw failure }
        throw TransferError(.network, "the \(peer) closed the connection before the transfer finished")
    }
}
