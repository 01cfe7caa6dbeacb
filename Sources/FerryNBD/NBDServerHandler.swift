import FerryDisk
import NIOCore
import NIOPosix

/// One client connection of `NBDServer`: the handshake (`NBDServerHandshake`), then requests,
/// each run on the thread pool (`NBDServerWork`) with its reply written when it is done, in
/// whatever order they finish. Reading stops while `maxBytesInFlight` of requests are
/// running (back-pressure), so a client that floods requests cannot grow the server's memory.
final class NBDServerHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes of READ/WRITE requests that may run at once on one connection.
    static let maxBytesInFlight = 16 << 20
    /// Requests that may run at once on one connection.
    static let maxRequestsInFlight = 64

    private let exports: [NBDServedExport]
    private let pool: NIOThreadPool
    private var handshake: NBDServerHandshake?
    private var agreement: NBDSessionAgreement?
    private var inbound = ByteBuffer()
    private var bytesInFlight = 0
    private var requestsInFlight = 0
    private var readPending = false
    private var disconnecting = false

    init(exports: [NBDServedExport], pool: NIOThreadPool) {
        self.exports = exports
        self.pool = pool
        handshake = NBDServerHandshake(exports: exports.map(\.spec))
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(NBDServerHandshake.greeting), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        process(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if isFull { readPending = true } else { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private var isFull: Bool { bytesInFlight >= Self.maxBytesInFlight || requestsInFlight >= Self.maxRequestsInFlight }

    private func process(context: ChannelHandlerContext) {
        if var machine = handshake {
            let (send, outcome) = machine.receive(&inbound)
            handshake = machine
            if send.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(send), promise: nil) }
            switch outcome {
            case .negotiating: return
            case .close:
                handshake = nil
                context.close(promise: nil)
                return
            case .transmission(let agreed):
                handshake = nil
                agreement = agreed
            }
        }
        guard let agreement else { return }
        while !disconnecting, !isFull {
            var peek = inbound
            let request: NBDRequest
            do {
                guard let r = try NBDRequest.decode(from: &peek) else { break }
                request = r
            } catch {
                return context.close(promise: nil)
            }
            var payload: ByteBuffer?
            if request.command == .write {
                // A payload over the limit cannot be skipped safely: the client is hostile or broken.
                guard request.length <= NBD.Limit.payload else { return context.close(promise: nil) }
                guard let slice = peek.readSlice(length: Int(request.length)) else { break }
                payload = slice
            }
            inbound = peek
            if request.command == .disconnect {
                disconnecting = true
                break
            }
            start(request, payload: payload, agreement: agreement, context: context)
        }
        inbound.discardReadBytes()
        if disconnecting, requestsInFlight == 0 { context.close(promise: nil) }
    }

    private func start(_ request: NBDRequest, payload: ByteBuffer?, agreement: NBDSessionAgreement, context: ChannelHandlerContext) {
        let export = exports[agreement.export]
        let weight = request.command == .read || request.command == .write ? Int(request.length) : 0
        bytesInFlight += weight
        requestsInFlight += 1
        let allocator = context.channel.allocator
        let payloadBox = payload
        pool.runIfActive(eventLoop: context.eventLoop) {
            NBDServerWork.perform(request, payload: payloadBox, on: export.device, export: export.spec, agreement: agreement, allocator: allocator)
        }.assumeIsolated().whenComplete { result in
            self.bytesInFlight -= weight
            self.requestsInFlight -= 1
            if case .success(let reply) = result {
                context.writeAndFlush(self.wrapOutboundOut(reply), promise: nil)
            } else {
                context.close(promise: nil)
            }
            if self.readPending, !self.isFull {
                self.readPending = false
                context.read()
            }
            self.process(context: context)
        }
    }
}
