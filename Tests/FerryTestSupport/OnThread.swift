import Foundation

/// Runs blocking work (a blocking accept, read or write) on a thread of its own and
/// awaits its result. Swift's cooperative pool has one thread per core — two on our
/// machines — so blocking calls made directly in async tests can occupy every pool
/// thread while the peer they wait for never gets to run: a deadlock.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}
