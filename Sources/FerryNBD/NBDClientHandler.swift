import FerryDisk
import NIOCore
import NIOSSL
import NIOTLS

/// The memory a READ's replies land in. The caller of `NBDClient.read` blocks until the
/// request's promise completes, and the handler stops writing to it before completing the
/// promise, so the memory outlives every write.
struct ReadTarget: @unchecked Sendable {
    // @unchecked: a raw pointer owned by a caller that waits (see above); only the event loop writes.
    let buffer: UnsafeMutableRawBufferPointer
}

/// What a finished request yields.
enum NBDOutcome: Sendable {
    case done
    case descriptors([NBDBlockDescriptor])
}

/// Ranges of one READ already received, to check that chunks cover it exactly once.
struct Coverage {
    private var ranges: [(UInt64, UInt64)] = []
    private(set) var covered: UInt64 = 0

    /// Adds `[start, end)`; false when it overlaps what came before.
    mutating func add(_ start: UInt64, _ end: UInt64) -> Bool {
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].0 < start { low = mid + 1 } else { high = mid }
        }
        if low > 0, ranges[low - 1].1 > start { return false }
        if low < ranges.count, ranges[low].0 < end { return false }
        ranges.insert((start, end), at: low)
        covered += end - start
        return true
    }
}

/// The client's channel handler: runs the handshake, then matches replies to requests in flight
/// (by cookie; they may come in any order and interleave) and completes their promises.
/// Lives on its channel's event loop; callers reach it through `NIOLoopBound`.
final class NBDClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct InFlight {
        var pending: NBDPending
        var target: ReadTarget?
        var promise: EventLoopPromise<NBDOutcome>
        var coverage = Coverage()
        var descriptors: [NBDBlockDescriptor] = []
        var failure: (any Error)?
    }

    let name: String
    private var handshake: NBDClientHandshake?
    let ready: EventLoopPromise<NBDNegotiated>
    private var negotiated: NBDNegotiated?
    private var decoder = NBDReplyDecoder(exportSize: 0)
    private var inbound = ByteBuffer()
    private var inFlight: [UInt64: InFlight] = [:]
    private var nextCookie: UInt64 = 1
    private var broken: NBDError?
    private var context: ChannelHandlerContext?
    /// What STARTTLS's ACK puts in front of this handler (nil: plaintext, `nbd://`).
    private let tls: NBDTLSUpgrade?
    private var tlsStarted = false

    init(exportName: String, name: String, ready: EventLoopPromise<NBDNegotiated>, tls: NBDTLSUpgrade? = nil) {
        self.name = name
        self.ready = ready
        self.tls = tls
        handshake = NBDClientHandshake(exportName: exportName, peer: name, tls: tls != nil)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do {
            if var machine = handshake {
                let (send, agreed) = try machine.receive(&inbound)
                handshake = machine
                for b in send { context.write(wrapOutboundOut(b), promise: nil) }
                context.flush()
                if machine.awaitsTLS, !tlsStarted { try startTLS(context: context) }
                guard let agreed else { return }
                handshake = nil
                negotiated = agreed
                decoder = NBDReplyDecoder(exportSize: agreed.size, extended: agreed.extendedHeaders)
                ready.succeed(agreed)
            }
            while let reply = try decoder.next(from: &inbound, pending: { inFlight[$0]?.pending }) {
                try take(reply)
            }
            inbound.discardReadBytes()
        } catch {
            fail(error as? NBDError ?? NBDError(.protocolViolation, name, "\(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // With TLS 1.3 a server checks the client's certificate after the client's handshake is
        // done: a server that refuses it hangs up during the first options over TLS.
        if tlsStarted, handshake != nil {
            let why = "the server closed the connection during the TLS handshake or just after it"
            return fail(NBDError(.tls, name, why + " (does it want a client certificate, client-cert.pem and client-key.pem in tls-certificates, or another key?)"), context: context)
        }
        fail(NBDError(.connection, name, "the server closed the connection"), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Any failure while TLS comes up (a reset, too: a server refusing the client's
        // certificate may drop the connection without an alert) is a TLS failure.
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError || (tlsStarted && handshake != nil) {
            let hint = handshake != nil ? " (\(tls?.failureHint ?? ""))" : ""
            return fail(NBDError(.tls, name, "TLS failed: \(error)" + hint), context: context)
        }
        fail(NBDError(.connection, name, "\(error)"), context: context)
    }

    /// STARTTLS was acknowledged: TLS goes in front of this handler, and the negotiation goes on
    /// once its handshake completes (`userInboundEventTriggered`).
    private func startTLS(context: ChannelHandlerContext) throws {
        guard let tls else { throw NBDError(.protocolViolation, name, "TLS started without a TLS configuration") }
        tlsStarted = true
        do {
            try context.pipeline.syncOperations.addHandler(try tls.clientHandler(), position: .first)
        } catch {
            throw NBDError(.tls, name, "cannot start TLS: \(error)")
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, var machine = handshake, machine.awaitsTLS else {
            return context.fireUserInboundEventTriggered(event)
        }
        context.writeAndFlush(wrapOutboundOut(machine.tlsEstablished()), promise: nil)
        handshake = machine
    }

    /// Sends a request (with its WRITE payload) and returns the future of its outcome.
    func send(_ request: NBDRequest, payload: ByteBuffer?, target: ReadTarget?, on loop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        if let broken { return loop.makeFailedFuture(broken) }
        guard let context, let command = request.command else {
            return loop.makeFailedFuture(NBDError(.connection, name, "not connected"))
        }
        var request = request
        request.cookie = nextCookie
        nextCookie += 1
        let promise = loop.makePromise(of: NBDOutcome.self)
        if command != .disconnect {
            inFlight[request.cookie] = InFlight(
                pending: NBDPending(command: command, offset: request.offset, length: request.length), target: target, promise: promise)
        }
        let extended = negotiated?.extendedHeaders ?? false
        var header = context.channel.allocator.buffer(capacity: NBDRequest.extendedHeaderSize)
        request.write(to: &header, extended: extended)
        context.write(wrapOutboundOut(header), promise: nil)
        if let payload { context.write(wrapOutboundOut(payload), promise: nil) }
        context.flush()
        if command == .disconnect { promise.succeed(.done) }
        return promise.futureResult
    }

    private func take(_ reply: NBDReply) throws {
        let cookie = reply.cookie
        guard var entry = inFlight[cookie] else { return }
        let request = entry.pending
        switch reply {
        case .simple(_, let error, let data):
            if error != 0 {
                entry.failure = remote(error, "", request)
            } else if request.command == .read {
                guard var data, data.readableBytes == Int(request.length) else { throw violation("a short simple READ reply") }
                copy(&data, at: request.offset, into: &entry)
                _ = entry.coverage.add(request.offset, request.end)
            } else if request.command == .blockStatus {
                throw violation("a simple reply to BLOCK_STATUS")
            }
        case .chunk(_, _, let payload):
            switch payload {
            case .none: break
            case .data(let offset, var bytes):
                guard entry.coverage.add(offset, offset + UInt64(bytes.readableBytes)) else { throw violation("READ chunks overlap at \(offset)") }
                copy(&bytes, at: offset, into: &entry)
            case .hole(let offset, let length):
                guard entry.coverage.add(offset, offset + UInt64(length)) else { throw violation("READ chunks overlap at \(offset)") }
                if let target = entry.target {
                    let at = Int(offset - request.offset)
                    UnsafeMutableRawBufferPointer(rebasing: target.buffer[at..<at + Int(length)]).initializeMemory(as: UInt8.self, repeating: 0)
                }
            case .blockStatus(let id, let descriptors):
                guard id == negotiated?.baseAllocation else { throw violation("block status for context \(id), which ferry did not select") }
                guard entry.descriptors.isEmpty else { throw violation("two block status chunks for one context") }
                entry.descriptors = descriptors
            case .error(let errno, let message, _):
                entry.failure = entry.failure ?? remote(errno, message, request)
            }
        }
        guard reply.isFinal else {
            inFlight[cookie] = entry
            return
        }
        inFlight[cookie] = nil
        if let failure = entry.failure { return entry.promise.fail(failure) }
        switch request.command {
        case .read:
            guard entry.coverage.covered == UInt64(request.length) else {
                // The entry left the table above: fail its promise here, or its caller waits forever.
                let error = violation("the reply to a READ of \(request.length) bytes at \(request.offset) covered \(entry.coverage.covered)")
                entry.promise.fail(error)
                throw error
            }
            entry.promise.succeed(.done)
        case .blockStatus:
            guard !entry.descriptors.isEmpty else {
                let error = violation("BLOCK_STATUS ended without a block status chunk")
                entry.promise.fail(error)
                throw error
            }
            entry.promise.succeed(.descriptors(entry.descriptors))
        default:
            entry.promise.succeed(.done)
        }
    }

    private func copy(_ bytes: inout ByteBuffer, at offset: UInt64, into entry: inout InFlight) {
        guard let target = entry.target else { return }
        let at = Int(offset - entry.pending.offset)  // the decoder checked the range
        bytes.withUnsafeReadableBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: target.buffer[at..<at + source.count]).copyMemory(from: source)
        }
    }

    private func remote(_ errno: UInt32, _ message: String, _ request: NBDPending) -> DiskError {
        let operation = "\(request.command)".lowercased()
        let text = "the NBD server failed \(request.command) \(request.offset)+\(request.length) with errno \(errno)" + (message.isEmpty ? "" : ": " + message)
        let code: DiskError.Code
        switch errno {
        case NBD.Errno.eperm: code = .readOnly
        case NBD.Errno.enospc: code = .noSpace
        case NBD.Errno.einval, NBD.Errno.eoverflow: code = .outOfRange
        case NBD.Errno.enotsup: code = .unsupported
        default: code = .io
        }
        return DiskError(code, name, operation: operation, errno: Int32(truncatingIfNeeded: errno), text)
    }

    private func violation(_ detail: String) -> NBDError { NBDError(.protocolViolation, name, detail) }

    private func fail(_ error: NBDError, context: ChannelHandlerContext) {
        if broken == nil {
            var error = error
            if error.peer == "peer" { error.peer = name }
            broken = error
        }
        let error = broken ?? error
        if handshake != nil {
            handshake = nil
            ready.fail(error)
        }
        let pending = inFlight
        inFlight = [:]
        for entry in pending.values { entry.promise.fail(error) }
        context.close(promise: nil)
    }
}
