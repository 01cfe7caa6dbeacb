import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A flag the copy engine polls between requests. `interrupt` is set by SIGINT and
/// SIGTERM once `installSignalHandlers()` has run, so Ctrl-C stops a copy cleanly:
/// workers finish their current request, the partial target is removed, and the
/// command exits with its "interrupted" code. Streams wait for data with `poll`
/// in short slices so that a copy blocked on a silent pipe notices the flag too.
public final class Cancellation: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    public func cancel() { flag.store(true, ordering: .relaxed) }

    /// The process-wide cancellation that signals trigger.
    public static let interrupt = Cancellation()

    /// Routes SIGINT and SIGTERM to `interrupt`. A second Ctrl-C kills the process.
    public static func installSignalHandlers() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { number in
                if Cancellation.interrupt.isCancelled {
                    signal(number, SIG_DFL)
                    raise(number)
                }
                Cancellation.interrupt.cancel()
            }
        }
    }
}
