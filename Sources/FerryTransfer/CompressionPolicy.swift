import FerryProtocol
import Foundation
import Synchronization

/// `--compress`: a fixed codec, none, or `auto`.
public enum CompressionMode: String, Sendable, CaseIterable {
    case auto, none, zstd, lz4, gzip
}

/// Decides, chunk by chunk, whether and how to compress (`--compress auto`).
///
/// Two measurements drive it:
/// * **Which resource is the bottleneck.** Workers report how long they spent
///   preparing a chunk (read, hash, compress: CPU and disk) and how long the socket
///   made them wait. Mostly waiting on the socket means the link is the bottleneck,
///   so spending CPU on zstd buys time; mostly preparing means CPU (or the disk) is,
///   so compression would only slow us down and is skipped, except cheap lz4 while
///   the two are balanced.
/// * **Compressibility.** Each compressed chunk's ratio feeds a moving average; a
///   chunk that does not shrink below 90 % is sent raw, and after such a chunk the
///   policy stops trying for a while — 16 chunks, doubling after every failed probe up
///   to 1024 and back to 16 after a success — so already-compressed or encrypted data
///   costs almost no CPU.
final class CompressionPolicy: Sendable {
    static let worthwhileRatio = 0.9
    static let probeInterval = 16
    static let maxSkip = 1024

    let mode: CompressionMode
    private let codecs: [CompressedExtent.Codec: Codec]

    private struct State {
        var waitSeconds = 0.0
        var workSeconds = 0.0
        var ratio = 0.5
        var skipUntil = 0
        var skip = CompressionPolicy.probeInterval
        var chunk = 0
    }
    private let state = Mutex(State())

    /// `usable`: the codecs both ends have.
    init(mode: CompressionMode, usable: [Codec]) {
        self.mode = mode
        var byKind: [CompressedExtent.Codec: Codec] = [:]
        for c in usable { byKind[c.kind] = c }
        codecs = byKind
    }

    /// The codec for the next chunk, or nil to send it raw.
    func choose() -> Codec? {
        switch mode {
        case .none: return nil
        case .zstd: return codecs[.zstd]
        case .lz4: return codecs[.lz4]
        case .gzip: return codecs[.gzip]
        case .auto:
            return state.withLock { s -> Codec? in
                s.chunk += 1
                if s.chunk < s.skipUntil { return nil }
                let total = s.waitSeconds + s.workSeconds
                let linkShare = total > 0 ? s.waitSeconds / total : 0.5
                if linkShare > 0.6 { return codecs[.zstd] ?? codecs[.lz4] ?? codecs[.gzip] }
                if linkShare > 0.3 { return codecs[.lz4] ?? codecs[.zstd] }
                // CPU-bound: compress only a probe now and then, to notice a slower link.
                return s.chunk % Self.probeInterval == 0 ? codecs[.lz4] : nil
            }
        }
    }

    /// Records one compression attempt: `compressed` is nil when the chunk did not shrink enough.
    func record(original: Int, compressed: Int?) {
        let ratio = Double(compressed ?? original) / Double(max(1, original))
        state.withLock { s in
            s.ratio = s.ratio * 0.8 + ratio * 0.2
            if ratio >= Self.worthwhileRatio {
                s.skipUntil = s.chunk + s.skip
                s.skip = min(Self.maxSkip, s.skip * 2)
            } else {
                s.skip = Self.probeInterval
            }
        }
    }

    /// Records time spent preparing a chunk and time spent waiting to send it (decayed averages).
    func record(work: Double, wait: Double) {
        state.withLock { s in
            s.workSeconds = s.workSeconds * 0.9 + work
            s.waitSeconds = s.waitSeconds * 0.9 + wait
        }
    }
}
