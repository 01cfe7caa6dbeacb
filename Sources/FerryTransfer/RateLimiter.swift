import FerryProtocol
import Foundation
import Synchronization

/// A token bucket for `--limit`: callers take bytes and sleep when the bucket is
/// empty. Burst is a quarter second's worth, so the rate holds over any second.
final class RateLimiter: Sendable {
    let bytesPerSecond: Double
    private let state: Mutex<(tokens: Double, last: Date)>

    init(bytesPerSecond: UInt64) {
        self.bytesPerSecond = Double(max(1, bytesPerSecond))
        state = Mutex((tokens: 0, last: Date()))
    }

    func take(_ bytes: Int) async {
        let wait = state.withLock { s -> Double in
            let now = Date()
            let burst = bytesPerSecond / 4
            s.tokens = min(burst, s.tokens + now.timeIntervalSince(s.last) * bytesPerSecond)
            s.last = now
            s.tokens -= Double(bytes)
            return s.tokens < 0 ? -s.tokens / bytesPerSecond : 0
        }
        if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
    }
}

extension Message {
    /// Payload bytes this message puts on the wire (what `--limit` meters).
    var wireBytes: Int {
        switch self {
        case .data(let e): e.length
        case .compressed(let e): e.compressed.readableBytes
        default: 0
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
