import Foundation
import Synchronization

/// The stages a copy or transfer spends its time in. A stage's time is summed over
/// the threads doing it; the one with the most time over the last few seconds is
/// what limits the speed (a pipeline runs at the pace of its slowest stage, whose
/// threads are busy while the others wait on it).
public enum Stage: String, Sendable, CaseIterable, Codable {
    case sourceRead = "source read"
    /// Hashing, zero detection, compression, decompression, encryption.
    case cpu = "CPU"
    /// Waiting for the socket (sender) or for the peer's data (receiver).
    case network
    case targetWrite = "target write"
}

/// Accumulated seconds per stage, bumped by workers (a lock per request: cheap).
public final class StageTimes: Sendable {
    private let seconds = Mutex([Double](repeating: 0, count: Stage.allCases.count))

    public init() {}

    public func add(_ stage: Stage, _ duration: Double) {
        guard duration > 0, let i = Stage.allCases.firstIndex(of: stage) else { return }
        seconds.withLock { $0[i] += duration }
    }

    /// Runs `body`, adding its duration to `stage`.
    @discardableResult
    public func measure<T>(_ stage: Stage, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { add(stage, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        return try body()
    }

    public func snapshot() -> [Double] { seconds.withLock { $0 } }
}

/// Names the busiest stage since the previous call (or over the whole run).
final class BottleneckTracker: Sendable {
    private let times: StageTimes
    private let last = Mutex<(snapshot: [Double], stage: Stage?)>(([], nil))

    init(_ times: StageTimes) { self.times = times }

    func current(overall: Bool) -> Stage? {
        let now = times.snapshot()
        return last.withLock { last in
            let base = overall || last.snapshot.isEmpty ? [Double](repeating: 0, count: now.count) : last.snapshot
            let deltas = zip(now, base).map { $0 - $1 }
            last.snapshot = now
            // Too little measured this interval (a stall, or nothing started): keep the last
            // verdict. Over the whole run any measured time decides (a small copy is quick).
            guard let top = deltas.indices.max(by: { deltas[$0] < deltas[$1] }), deltas[top] > (overall ? 0 : 0.001) else {
                return last.stage
            }
            last.stage = Stage.allCases[top]
            return last.stage
        }
    }
}
