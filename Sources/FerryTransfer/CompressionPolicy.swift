import FerryProtocol
import Foundation
import Synchronization

/// `--compress`: a fixed codec, none, or `auto`.
public enum CompressionMode: String, Sendable, CaseIterable {
    case auto, none, zstd, lz4, gzip
}

/// Decides, chunk by chunk, whether and how to compress. A fixed mode always names its
/// codec; `auto` asks a `CompressionModel` (see there for the reasoning), fed by the
/// sender's measurements: the compress calls and the read + hash time (`SourceStreamer`)
/// and how long each worker waited for the socket (`TransferSender`).
final class CompressionPolicy: Sendable {
    /// A chunk that does not shrink below this share of its size is sent raw.
    static let worthwhileRatio = 0.9
    /// `FERRY_TRACE_COMPRESSION=1`: print what `auto` decided at the end of each disk.
    static let tracing = ProcessInfo.processInfo.environment["FERRY_TRACE_COMPRESSION"] != nil

    let mode: CompressionMode
    private let codecs: [CompressedExtent.Codec: Codec]
    /// Used only by `auto`.
    private let model: Mutex<CompressionModel>
    private let clock: @Sendable () -> Double

    /// `usable`: the codecs both ends have; `parallelism`: threads preparing chunks at
    /// once; `limit`: `--limit` (bytes/s); `clock`: seconds, any origin (tests inject one).
    init(
        mode: CompressionMode, usable: [Codec], parallelism: Int = 1, limit: UInt64? = nil,
        clock: (@Sendable () -> Double)? = nil
    ) {
        self.mode = mode
        var byKind: [CompressedExtent.Codec: Codec] = [:]
        for c in usable { byKind[c.kind] = c }
        codecs = byKind
        let kinds = mode == .auto ? CompressedExtent.Codec.allCases.filter { byKind[$0] != nil } : []
        model = Mutex(CompressionModel(usable: kinds, parallelism: parallelism, limit: limit.map(Double.init)))
        if let clock {
            self.clock = clock
        } else {
            let origin = ContinuousClock.now
            self.clock = { (ContinuousClock.now - origin).seconds }
        }
    }

    /// The codec for the next chunk, or nil to send it raw.
    func choose() -> Codec? {
        switch mode {
        case .none: return nil
        case .zstd: return codecs[.zstd]
        case .lz4: return codecs[.lz4]
        case .gzip: return codecs[.gzip]
        case .auto:
            let now = clock()
            guard let kind = model.withLock({ $0.choose(now: now).codec }) else { return nil }
            return codecs[kind]
        }
    }

    /// One compress call: `input` bytes became `output` (nil: not below 90 %, sent raw) in `seconds`.
    func recordCompression(_ kind: CompressedExtent.Codec, input: Int, output: Int?, seconds: Double) {
        guard mode == .auto else { return }
        model.withLock { $0.recordCompression(kind, input: input, output: output, seconds: seconds) }
    }

    /// A request of `bytes` was read and hashed (and its chunks compressed) in `seconds`.
    func recordPrepared(bytes: Int, seconds: Double) {
        guard mode == .auto else { return }
        model.withLock { $0.recordPrepared(bytes: bytes, seconds: seconds) }
    }

    /// A worker spent `work` seconds preparing a request, then `wait` seconds until its
    /// `wireBytes` reached the socket.
    func recordSent(wireBytes: Int, work: Double, wait: Double) {
        guard mode == .auto else { return }
        let now = clock()
        model.withLock { $0.recordSent(wireBytes: wireBytes, work: work, wait: wait, now: now) }
    }

    /// One line on what `auto` measured and chose, for `FERRY_TRACE_COMPRESSION`.
    var summary: String {
        guard mode == .auto else { return "compression \(mode.rawValue)" }
        return model.withLock { m in
            func mb(_ v: Double?) -> String { v.map { String(format: "%.0f MB/s", $0 / 1e6) } ?? "?" }
            var parts = [
                "auto: \(m.current.map { "\($0)" } ?? "none") after \(m.switches) switch(es), \(m.probes) probe(s) in \(m.chunks) chunks",
                "link \(mb(m.linkRate))", "read+hash \(mb(m.baseCost.map { 1 / $0 }))",
            ]
            for k in CompressedExtent.Codec.allCases where codecs[k] != nil {
                let ratio = m.ratio(k).map { String(format: "%.2f", $0) } ?? "?"
                parts.append("\(k) ratio \(ratio) \(mb(m.cost(k).map { 1 / $0 })) → \(mb(m.predicted(k)))")
            }
            parts.append("none → \(mb(m.predicted(nil)))")
            return parts.joined(separator: "; ")
        }
    }
}
