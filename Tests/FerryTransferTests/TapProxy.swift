import FerryProtocol
import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay between a sender and a receiver (plain, `--insecure`) that decodes the
/// sender's frames as they pass and records each message's kind and disk, so a test
/// can see the order of the conversation on the wire. Relays one connection.
final class TapProxy: Sendable {
    typealias Raw = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    struct Record: Sendable, Equatable {
        var kind: Message.Kind
        var disk: UInt32?
    }

    /// What the sender sent, in order.
    final class Recorder: Sendable {
        let records = Mutex<[Record]>([])
        /// Bytes each direction carried (frames, headers included).
        let senderBytes = Mutex(0)
        let receiverBytes = Mutex(0)
    }

    let recorder = Recorder()
    var records: [Record] { recorder.records.withLock { $0 } }
    let port: Int
    private let task: Task<Void, any Error>

    /// Listens on 127.0.0.1 and relays the first connection to `target`.
    static func start(relayingTo target: Int) async throws -> TapProxy {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try Raw(wrappingChannelSynchronously: channel) }
            }
        return TapProxy(server: server, target: target)
    }

    private init(server: NIOAsyncChannel<Raw, Never>, target: Int) {
        port = server.channel.localAddress?.port ?? 0
        let recorder = recorder
        task = Task {
            try await server.executeThenClose { clients in
                for try await client in clients {
                    let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .connect(host: "127.0.0.1", port: target) { channel in
                            channel.eventLoop.makeCompletedFuture { try Raw(wrappingChannelSynchronously: channel) }
                        }
                    try await Self.relay(client, upstream, recorder)
                    return
                }
            }
        }
    }

    private static func relay(_ client: Raw, _ upstream: Raw, _ recorder: Recorder) async throws {
        try await client.executeThenClose { fromSender, toSender in
            try await upstream.executeThenClose { fromReceiver, toReceiver in
                await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var pending = ByteBuffer()
                        for try await chunk in fromSender {
                            var copy = chunk
                            recorder.senderBytes.withLock { $0 += chunk.readableBytes }
                            pending.writeBuffer(&copy)
                            while let message = try MessageDecoder.next(from: &pending) {
                                recorder.records.withLock { $0.append(Record(kind: message.kind, disk: message.disk)) }
                            }
                            pending.discardReadBytes()
                            try await toReceiver.write(chunk)
                        }
                    }
                    group.addTask {
                        for try await chunk in fromReceiver {
                            recorder.receiverBytes.withLock { $0 += chunk.readableBytes }
                            try await toSender.write(chunk)
                        }
                    }
                    // Either side closing ends the relay (both connections close).
                    _ = try? await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    func stop() { task.cancel() }
}

extension Message {
    /// The disk a message is about, if any.
    var disk: UInt32? {
        switch self {
        case .disk(let m): m.index
        case .ready(let m): m.index
        case .data(let m): m.disk
        case .zero(let m): m.disk
        case .compressed(let m): m.disk
        case .ack(let m): m.disk
        case .finish(let m): m.disk
        case .result(let m): m.disk
        case .segments(let m): m.disk
        case .same(let m): m.disk
        case .blockRequest(let m): m.disk
        case .blockHashes(let m): m.disk
        case .sameBlocks(let m): m.disk
        case .hello, .error, .ping: nil
        }
    }
}
