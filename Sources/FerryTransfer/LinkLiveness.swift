import NIOCore

/// When a link is dead: a read has been outstanding — this side asked the socket for
/// bytes — and nothing arrived for `timeout`.
///
/// Time in which this side does not ask (its consumer is busy, e.g. a target that
/// stalls in fsync, and NIOAsyncChannel's back-pressure holds the reads) is not the
/// peer's silence: the peer's pings are waiting in our socket buffer, behind the data
/// we have not consumed. Counting every second without a read, as an idle-read timer
/// does, closed healthy links whenever ferry itself applied back-pressure for longer
/// than the timeout. The peer pings every `TransferChannel.pingInterval` (docs/protocol.md,
/// "Liveness"), so a live link is heard from well within the timeout once we listen.
struct LivenessMonitor: Sendable, Equatable {
    let timeout: UInt64
    /// Since when a read has been outstanding with nothing heard; nil while we are not waiting.
    private(set) var waitingSince: UInt64?

    init(timeoutNanoseconds: UInt64) { timeout = timeoutNanoseconds }

    /// The channel asked for more bytes (an outbound `read`).
    mutating func readRequested(at now: UInt64) {
        if waitingSince == nil { waitingSince = now }
    }

    /// Bytes arrived: the peer is there. The next request starts a new wait.
    mutating func heard(at now: UInt64) { waitingSince = nil }

    func isDead(at now: UInt64) -> Bool {
        guard let since = waitingSince else { return false }
        return now >= since && now - since >= timeout
    }
}

/// Carries out `LivenessMonitor` at the head of the pipeline (it sees raw reads and
/// bytes, below TLS and below the back-pressure of the async channel), checking ten
/// times per timeout. A dead link is reported as a network error and closed.
final class LivenessHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var monitor: LivenessMonitor
    private var check: RepeatedTask?

    init(timeout: TimeAmount) {
        monitor = LivenessMonitor(timeoutNanoseconds: UInt64(max(1, timeout.nanoseconds)))
    }

    private static var now: UInt64 { UInt64(NIODeadline.now().uptimeNanoseconds) }

    func handlerAdded(context: ChannelHandlerContext) {
        let every = TimeAmount.nanoseconds(Int64(max(monitor.timeout / 10, 10_000_000)))
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            bound.value.handler.checkLiveness(context: bound.value.context)
        }
    }

    private func checkLiveness(context: ChannelHandlerContext) {
        guard monitor.isDead(at: Self.now) else { return }
        check?.cancel()
        check = nil
        let seconds = Double(monitor.timeout) / 1e9
        context.fireErrorCaught(TransferError(
            .network, "nothing heard from the peer for \(String(format: "%g", seconds)) s while waiting for it; the link looks dead"))
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        monitor.readRequested(at: Self.now)
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        monitor.heard(at: Self.now)
        context.fireChannelRead(data)
    }
}
