import Foundation

/// A cheap guess at how compressible a chunk is, for `--compress auto`: the order-0 entropy
/// (bits per byte) of a sample of the chunk. It costs a few microseconds per MiB and never
/// decides alone; it tells the model that the data has changed character, so that a codec
/// whose probes failed on incompressible data is probed again at once instead of after its
/// backed-off gap (up to 256 chunks: a quarter GiB of text sent raw after a run of random
/// bytes, measured on issue 14's seed link).
///
/// Order-0 entropy is a lower bound on what a byte-wise model needs and says nothing of
/// repeats, so text (≈ 4.5–5 bits), code (≈ 6) and zeros (0) read low and random, compressed or
/// encrypted bytes read ≈ 8; data that is compressible only through long repeats of random-looking
/// blocks reads high, and for it the model's periodic probes remain the way back.
enum CompressionHint {
    /// Bytes sampled: `windows` windows of `window` bytes spread evenly over the chunk.
    static let window = 512
    static let windows = 8

    /// Entropy in bits per byte of the sample, 0 for an empty chunk. With 4096 bytes sampled
    /// the estimate of uniformly random data is ≈ 7.95 (the plug-in estimator's bias).
    static func entropy(_ bytes: UnsafeRawBufferPointer) -> Double {
        let count = bytes.count
        guard count > 0 else { return 0 }
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 256) { histogram in
            histogram.initialize(repeating: 0)
            var sampled = 0
            if count <= window * windows {
                for byte in bytes { histogram[Int(byte)] += 1 }
                sampled = count
            } else {
                let stride = (count - window) / (windows - 1)
                for w in 0..<windows {
                    let start = w * stride
                    for byte in UnsafeRawBufferPointer(rebasing: bytes[start..<(start + window)]) {
                        histogram[Int(byte)] += 1
                    }
                }
                sampled = window * windows
            }
            let n = Double(sampled)
            var bits = 0.0
            for c in histogram where c > 0 {
                let p = Double(c) / n
                bits -= p * log2(p)
            }
            return bits
        }
    }
}
