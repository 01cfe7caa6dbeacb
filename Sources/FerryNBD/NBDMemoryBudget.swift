import Synchronization

/// The bytes of READ/WRITE data that every connection of one `NBDServer` may hold at once: a
/// WRITE's payload from the moment its header is read, a READ's reply until it is written to
/// the socket. A request takes its length (at most the whole budget, so that a request as large
/// as the maximum payload still runs, alone) before the server reads on; when the budget is
/// spent the request waits, first come first served, and its connection stops reading its
/// socket (back-pressure) until enough is released. Requests in flight always finish and give
/// their bytes back, so a waiting request always runs in the end.
public final class NBDMemoryBudget: Sendable {
    /// The default budget of a server: 32 MiB, one request of the maximum payload.
    public static let defaultCapacity = 32 << 20

    /// The bytes that may be taken at once.
    public let capacity: Int

    private struct Waiter {
        var bytes: Int
        var granted: @Sendable () -> Void
    }

    private struct State {
        var inUse = 0
        var peak = 0
        var waiters: [Waiter] = []
        var head = 0
    }

    private let state = Mutex(State())

    public init(capacity: Int = NBDMemoryBudget.defaultCapacity) {
        precondition(capacity > 0, "an NBD memory budget needs at least one byte")
        self.capacity = capacity
    }

    /// The bytes taken now.
    public var inUse: Int { state.withLock { $0.inUse } }

    /// The most bytes ever taken at once (a statistic for tests and benchmarks).
    public var peakInUse: Int { state.withLock { $0.peak } }

    /// What a request of `bytes` takes: `bytes`, at most the whole budget.
    public func cost(_ bytes: Int) -> Int { min(max(bytes, 0), capacity) }

    /// Takes `cost(bytes)` and returns true when they are free and nobody waits; otherwise queues
    /// `granted`, which runs (on whichever thread releases) once the bytes are taken for it, and
    /// returns false. The caller gives the bytes back with `release` either way.
    public func acquire(_ bytes: Int, granted: @escaping @Sendable () -> Void) -> Bool {
        let bytes = cost(bytes)
        return state.withLock { s in
            if s.head == s.waiters.count, s.inUse + bytes <= capacity {
                s.inUse += bytes
                s.peak = max(s.peak, s.inUse)
                return true
            }
            s.waiters.append(Waiter(bytes: bytes, granted: granted))
            return false
        }
    }

    /// Gives back `cost(bytes)` taken by `acquire`, and runs the waiters that now fit, in order.
    public func release(_ bytes: Int) {
        let bytes = cost(bytes)
        let ready: [@Sendable () -> Void] = state.withLock { s in
            s.inUse -= bytes
            precondition(s.inUse >= 0, "the NBD memory budget was released more than taken")
            var ready: [@Sendable () -> Void] = []
            while s.head < s.waiters.count, s.inUse + s.waiters[s.head].bytes <= capacity {
                s.inUse += s.waiters[s.head].bytes
                s.peak = max(s.peak, s.inUse)
                ready.append(s.waiters[s.head].granted)
                s.head += 1
            }
            if s.head == s.waiters.count {
                s.waiters.removeAll(keepingCapacity: true)
                s.head = 0
            }
            return ready
        }
        for granted in ready { granted() }
    }
}
