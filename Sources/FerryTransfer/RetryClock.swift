import Synchronization

/// When a retrying transfer last made progress, for `--retry-for`: the retrying ends
/// `retryFor` seconds after the last time the receiver's durable bytes of some disk
/// reached a new high (on the receiver: journaled; on the sender: acknowledged as
/// durable or offered as journaled on reconnect). A reconnect alone is not progress,
/// nor is re-proving segments that were durable already, so a link that keeps dropping
/// before anything new is durable ends on both sides instead of cycling for ever.
final class RetryClock: Sendable {
    private struct State {
        var last: ContinuousClock.Instant?
        var best: [UInt32: UInt64] = [:]
    }
    private let state = Mutex(State())

    /// The first connection: the clock starts (later calls change nothing).
    func start() {
        state.withLock { if $0.last == nil { $0.last = .now } }
    }

    /// Disk `disk` is known durable up to `durable` bytes; a new high is progress.
    func record(disk: UInt32, durable: UInt64) {
        state.withLock { s in
            guard durable > s.best[disk, default: 0] else { return }
            s.best[disk] = durable
            s.last = .now
        }
    }

    /// Seconds of `retryFor` left since the last progress (all of it before the first connection).
    func remaining(_ retryFor: Double) -> Double {
        guard let last = state.withLock({ $0.last }) else { return retryFor }
        let elapsed = ContinuousClock.now - last
        return retryFor - (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
