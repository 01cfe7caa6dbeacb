import FerryProtocol
import NIOCore

extension TransferChannel {
    /// The longest a side that failed waits for its peer to hang up after hearing why.
    static let drainLimit: TimeAmount = .seconds(5)

    /// Tells the peer why this side stops, then closes so that the peer hears it.
    ///
    /// A plain close with unread input makes the kernel reset the connection and drop
    /// what was still queued — the error message with it — and the peer, seeing only a
    /// reset, retried a verification failure as a dropped link. So: the error is written,
    /// output is shut after it (FIN, or TLS close_notify then FIN), and input is read and
    /// dropped (`InputDrain`) until the peer closes or `drainLimit` passes; a full close
    /// asked for meanwhile (the session ending) completes then. Nothing more reaches this
    /// side's message stream.
    static func closeTelling(_ channel: any Channel, _ error: ProtocolError?) {
        channel.eventLoop.execute {
            try? channel.pipeline.syncOperations.addHandler(InputDrain(limit: drainLimit), position: .first)
            let written = error.map { channel.writeAndFlush(Message.error(ErrorMessage($0))) }
                ?? channel.eventLoop.makeSucceededVoidFuture()
            written.whenComplete { _ in
                channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
            }
        }
    }
}

/// Reads and drops everything the peer still sends, and holds a full close until the
/// peer has closed or `limit` passed (see `TransferChannel.closeTelling`).
final class InputDrain: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let limit: TimeAmount
    private var held: [EventLoopPromise<Void>] = []
    private var released = false

    init(limit: TimeAmount) { self.limit = limit }

    func handlerAdded(context: ChannelHandlerContext) {
        context.read()
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: limit) { bound.value.handler.release(context: bound.value.context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelReadComplete(context: ChannelHandlerContext) { context.read() }

    /// The pipeline's own reads stop here: this handler keeps reading by itself.
    func read(context: ChannelHandlerContext) {}

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, !released else { return context.close(mode: mode, promise: promise) }
        if let promise { held.append(promise) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        released = true
        for promise in held { promise.succeed() }
        held = []
        context.fireChannelInactive()
    }

    private func release(context: ChannelHandlerContext) {
        guard !released else { return }
        released = true
        let promises = held
        held = []
        let closed = context.eventLoop.makePromise(of: Void.self)
        closed.futureResult.whenComplete { result in
            for promise in promises { promise.completeWith(result) }
        }
        context.close(mode: .all, promise: closed)
    }
}
