import Synchronization

/// A counting semaphore for async tasks: at most `count` requests of the whole
/// session are read, hashed and on their way to the socket at once, whichever disk
/// they belong to. Disks streaming side by side each run their own workers, and all
/// of them draw from these permits, so the sender's memory stays bounded by
/// `count × request size` however many disks there are. Waiters are served first
/// come, first served, which interleaves the disks' requests.
///
/// A waiting task that is cancelled (the session failed) stops waiting with a
/// `CancellationError`, so a failed session never hangs on a permit.
final class RequestPermits: Sendable {
    private struct State {
        var available: Int
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        /// Waiters cancelled before they queued (the cancel handler ran first).
        var cancelled: Set<UInt64> = []
        var nextID: UInt64 = 0
    }
    private let state: Mutex<State>

    init(_ count: Int) {
        state = Mutex(State(available: max(1, count)))
    }

    func acquire() async throws {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { s -> Result<Void, any Error>? in
                    if s.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if s.available > 0 {
                        s.available -= 1
                        return .success(())
                    }
                    s.waiters.append((id, continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else {
                    s.cancelled.insert(id)
                    return nil
                }
                return s.waiters.remove(at: i).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard !s.waiters.isEmpty else {
                s.available += 1
                return nil
            }
            return s.waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
