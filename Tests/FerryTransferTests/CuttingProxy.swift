import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay that cuts every connection after it has carried `cutAfter` bytes from
/// the sender to the receiver (both sides closed, as a flaky link or a NAT timeout
/// would), and counts what it carried in all: the bytes the link really moved. Relays
/// every connection it gets, so a sender that reconnects goes through it again.
final class CuttingProxy: Sendable {
    typealias Raw = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    let port: Int
    let cutAfter: Int
    /// Bytes relayed sender → receiver over all connections.
    let carried = Atomic<Int>(0)
    let connections = Atomic<Int>(0)
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)

    static func start(relayingTo target: Int, cutAfter: Int) async throws -> CuttingProxy {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try Raw(wrappingChannelSynchronously: channel) }
            }
        let proxy = CuttingProxy(port: server.channel.localAddress?.port ?? 0, cutAfter: cutAfter)
        proxy.task.withLock {
            $0 = Task {
                try await server.executeThenClose { clients in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await client in clients {
                            group.addTask { await proxy.relay(client, to: target) }
                        }
                    }
                }
            }
        }
        return proxy
    }

    private init(port: Int, cutAfter: Int) {
        self.port = port
        self.cutAfter = cutAfter
    }

    private func relay(_ client: Raw, to target: Int) async {
        connections.add(1, ordering: .relaxed)
        guard
            let upstream = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: target, channelInitializer: { channel in
                    channel.eventLoop.makeCompletedFuture { try Raw(wrappingChannelSynchronously: channel) }
                })
        else {
            try? await client.channel.close()
            return
        }
        try? await client.executeThenClose { fromSender, toSender in
            try await upstream.executeThenClose { fromReceiver, toReceiver in
                await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var budget = self.cutAfter
                        for try await chunk in fromSender {
                            let n = min(budget, chunk.readableBytes)
                            if n > 0, let piece = chunk.getSlice(at: chunk.readerIndex, length: n) {
                                try await toReceiver.write(piece)
                                self.carried.add(n, ordering: .relaxed)
                                budget -= n
                            }
                            if budget == 0 { return }  // the cut
                        }
                    }
                    group.addTask {
                        for try await chunk in fromReceiver { try await toSender.write(chunk) }
                    }
                    // Either side closing, or the cut, ends the relay (both connections close).
                    _ = try? await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    func stop() { task.withLock { $0?.cancel() } }
}
