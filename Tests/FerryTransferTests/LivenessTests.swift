import FerryProtocol
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import FerryTransfer

/// Issue 9 item 14: liveness is the peer's silence while we listen, not time without
/// reads. A receiver whose target stalls longer than the idle timeout holds its reads
/// (back-pressure) and must keep a healthy link; a peer that is silent while we wait
/// is still found dead.
@Suite struct LivenessTests {
    @Test func monitorTransitions() {
        var m = LivenessMonitor(timeoutNanoseconds: 100)
        #expect(!m.isDead(at: 1_000))  // not waiting: never dead
        m.readRequested(at: 1_000)
        #expect(!m.isDead(at: 1_099))
        #expect(m.isDead(at: 1_100))
        m.heard(at: 1_100)
        #expect(!m.isDead(at: 5_000))  // heard, and no read asked since: back-pressure
        m.readRequested(at: 5_000)
        m.readRequested(at: 5_050)  // a second request does not restart the wait
        #expect(m.isDead(at: 5_100))
    }

    /// Short, but long enough that a loaded 2-core machine does not starve the pings.
    static let idle = TimeAmount.seconds(2)

    /// A listener with the receiver's pipeline; `connect` makes the one connection,
    /// `body` gets the server's end of it.
    static func accepting(
        _ connect: (Int) async throws -> Void, _ body: (MessageChannel) async throws -> Void
    ) async throws {
        let registry = ConnectionRegistry(limiter: AttemptLimiter(burst: 5, perSecond: 1))
        let listener = try await TransferChannel.listen(
            on: HostPort(host: "127.0.0.1", port: 0), identity: nil, registry: registry, idleTimeout: idle,
            pairingTimeout: .seconds(30))
        try await connect(listener.channel.localAddress?.port ?? 0)
        try await listener.executeThenClose { connections in
            var accepted = connections.makeAsyncIterator()
            guard let server = try await accepted.next(), registry.claim(server) != nil else {
                Issue.record("no connection")
                return
            }
            try await body(server)
        }
    }

    @Test func aConsumerThatStallsKeepsAHealthyLink() async throws {
        var client: MessageChannel?
        let count = 5000
        try await Self.accepting({ port in
            client = try await TransferChannel.connect(
                to: HostPort(host: "127.0.0.1", port: port), identity: nil, idleTimeout: Self.idle).0
        }) { server in
            guard let client else { return }
            try await client.executeThenClose { fromServer, toServer in
                // The client hears the server's pings throughout, as a sender does.
                let listening = Task { for try await _ in fromServer {} }
                defer { listening.cancel() }
                try await toServer.write(.hello(Hello(capabilities: [], role: .sender)))
                for i in 0..<count { try await toServer.write(.ack(Ack(disk: 0, written: UInt64(i), durable: 0))) }
                try await server.executeThenClose { fromClient, _ in
                    // Three idle timeouts without consuming: a target stuck in fsync.
                    try await Task.sleep(nanoseconds: 3 * UInt64(Self.idle.nanoseconds))
                    #expect(server.channel.isActive, "the receiver closed a healthy link it was holding back itself")
                    var acks = 0
                    for try await message in fromClient {
                        if case .ack = message { acks += 1 }
                        if acks == count { break }
                    }
                    #expect(acks == count)
                }
            }
        }
    }

    @Test func aSilentPeerIsStillFoundDead() async throws {
        var socket: Int32 = -1
        defer { if socket >= 0 { close(socket) } }
        try await Self.accepting({ port in socket = PlainPeer.connect(port) }) { server in
            try await server.executeThenClose { fromPeer, _ in
                do {
                    for try await _ in fromPeer {}
                    Issue.record("the stream ended without an error")
                } catch {
                    #expect((error as? TransferError)?.kind == .network, "\(error)")
                }
            }
        }
    }
}
