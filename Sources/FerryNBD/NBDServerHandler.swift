import FerryDisk
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// One client connection of `NBDServer`: the handshake (`NBDServerHandshake`), then requests,
/// each run on the thread pool (`NBDServerWork`) with its reply written when it is done, in
/// whatever order they finish. Reading stops while `maxBytesInFlight` of requests are
/// running, or while the request read last waits for the server's `NBDMemoryBudget`
/// (back-pressure), so clients that flood requests cannot grow the server's memory.
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
    private let budget: NBDMemoryBudget
    /// The budget taken for the request at the front of `inbound` (its header read, not started).
    private var reserved: Int?
    /// True while the request at the front of `inbound` waits for the budget.
    private var waitingForBudget = false
    private var closed = false
    private var handshake: NBDServerHandshake?
    private var agreement: NBDSessionAgreement?
    private var inbound = ByteBuffer()
    private var bytesInFlight = 0
    private var requestsInFlight = 0
    private var readPending = false
    private var disconnecting = false

    /// What STARTTLS's ACK puts in front of this handler (nil: no TLS, STARTTLS is refused).
    private let tls: NBDTLSUpgrade?

    init(exports: [NBDServedExport], pool: NIOThreadPool, budget: NBDMemoryBudget, tls: NBDTLSUpgrade? = nil) {
        self.exports = exports
        self.pool = pool
        self.budget = budget
        self.tls = tls
        handshake = NBDServerHandshake(exports: exports.map(\.spec), tls: tls != nil)
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
        if isFull || waitingForBudget { readPending = true } else { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        if let reserved {
            budget.release(reserved)
            self.reserved = nil
        }
        context.fireChannelInactive()
    }

    /// The budget a request takes: a READ its reply's data, a request with a payload the payload.
    private static func weight(of request: NBDRequest, payload: UInt64) -> Int {
        Int(clamping: request.command == .read ? request.length : payload)
    }

    /// Takes the budget for the request at the front of `inbound`; false when it must wait (the
    /// grant then resumes reading and processing on this channel's event loop).
    private func reserve(_ weight: Int, context: ChannelHandlerContext) -> Bool {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let budget = self.budget
        let taken = budget.acquire(weight) {
            loop.execute {
                let (handler, context) = bound.value
                guard !handler.closed else { return budget.release(weight) }
                handler.waitingForBudget = false
                handler.reserved = budget.cost(weight)
                if handler.readPending, !handler.isFull {
                    handler.readPending = false
                    context.read()
                }
                handler.process(context: context)
            }
        }
        if taken { reserved = budget.cost(weight) } else { waitingForBudget = true }
        return taken
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// TLS is up after STARTTLS: the negotiation starts over, over TLS.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, var machine = handshake else {
            return context.fireUserInboundEventTriggered(event)
        }
        machine.tlsEstablished()
        handshake = machine
        process(context: context)
    }

    private var isFull: Bool { bytesInFlight >= Self.maxBytesInFlight || requestsInFlight >= Self.maxRequestsInFlight }

    private func process(context: ChannelHandlerContext) {
        if var machine = handshake {
            let (send, outcome) = machine.receive(&inbound)
            handshake = machine
            if send.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(send), promise: nil) }
            switch outcome {
            case .negotiating: return
            case .startTLS:
                // The ACK is on its way below; TLS goes in front for everything after it.
                guard let tls else { return context.close(promise: nil) }
                do {
                    try context.pipeline.syncOperations.addHandler(tls.serverHandler(), position: .first)
                } catch {
                    context.close(promise: nil)
                }
                return
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
        while !disconnecting, !isFull, !waitingForBudget {
            var peek = inbound
            let request: NBDRequest
            do {
                guard let r = try NBDRequest.decode(from: &peek, extended: agreement.extendedHeaders) else { break }
                request = r
            } catch {
                return context.close(promise: nil)
            }
            let payloadLength = request.payloadLength(extended: agreement.extendedHeaders)
            let weight = Self.weight(of: request, payload: payloadLength)
            if weight > 0, reserved == nil, !reserve(weight, context: context) { break }
            var payload: ByteBuffer?
            if payloadLength > 0 {
                // A payload over the limit cannot be skipped safely: the client is hostile or broken.
                guard payloadLength <= NBD.Limit.payload else { return context.close(promise: nil) }
                guard let slice = peek.readSlice(length: Int(payloadLength)) else { break }
                // A copy of exactly its size: a slice would keep all of `inbound`'s storage (a
                // power of two, holding the requests around it) alive until the write is done,
                // memory the budget does not see.
                var own = context.channel.allocator.buffer(capacity: slice.readableBytes)
                own.writeImmutableBuffer(slice)
                payload = own
            }
            inbound = peek
            if request.command == .disconnect {
                disconnecting = true
                break
            }
            let taken = reserved ?? 0
            reserved = nil
            start(request, payload: payload, taken: taken, agreement: agreement, context: context)
        }
        inbound.discardReadBytes()
        if disconnecting, requestsInFlight == 0 { context.close(promise: nil) }
    }

    /// Runs `request` on the pool; `taken` of the budget is given back once its reply is written.
    private func start(_ request: NBDRequest, payload: ByteBuffer?, taken: Int, agreement: NBDSessionAgreement, context: ChannelHandlerContext) {
        let export = exports[agreement.export]
        let weight = Self.weight(of: request, payload: UInt64(payload?.readableBytes ?? 0))
        let budget = self.budget
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
                if taken > 0 {
                    let written = context.eventLoop.makePromise(of: Void.self)
                    written.futureResult.whenComplete { _ in budget.release(taken) }
                    context.writeAndFlush(self.wrapOutboundOut(reply), promise: written)
                } else {
                    context.writeAndFlush(self.wrapOutboundOut(reply), promise: nil)
                }
            } else {
                if taken > 0 { budget.release(taken) }
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
