import FerryProtocol
import Foundation
import NIOCore
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
        model = Mutex(CompressionModel(usable: kinds, parallelism: parallelism, limit: limit.map { Double($0) }))
        if let clock {
            self.clock = clock
        } else {
            let origin = ContinuousClock.now
            self.clock = { (ContinuousClock.now - origin).seconds }
        }
    }

    /// What to do with the next chunk; `entropy` is asked only by `auto`.
    private func choice(entropy: () -> Double? = { nil }) -> CompressionModel.Choice {
        switch mode {
        case .none: return .init(codec: nil, probe: nil)
        case .zstd: return .init(codec: .zstd, probe: nil)
        case .lz4: return .init(codec: .lz4, probe: nil)
        case .gzip: return .init(codec: .gzip, probe: nil)
        case .auto:
            let now = clock()
            let hint = entropy()
            let (choice, switched) = model.withLock { m in
                let before = m.switches
                return (m.choose(now: now, entropy: hint), m.switches != before)
            }
            if switched && Self.tracing {
                try? FileHandle.standardError.write(contentsOf: Data(String(format: "ferry: %.2f s: compression → %@; %@\n", now, "\(choice.codec.map { "\($0)" } ?? "none")", summary).utf8))
            }
            return choice
        }
    }

    /// The codec for the next chunk (a probe's second codec aside), or nil for raw.
    func choose() -> Codec? {
        choice().codec.flatMap { codecs[$0] }
    }

    /// Compresses one chunk of `length` bytes as the policy sees fit, through `attempt`
    /// (which returns nil when the result would not be under 90 %): the codec and bytes
    /// to send, or nil to send the chunk raw. Times every attempt for the model; a probe
    /// compresses the chunk twice and sends the smaller. `entropy` samples the chunk
    /// (`CompressionHint`); only `auto` calls it.
    func compress(length: Int, entropy: () -> Double? = { nil }, with attempt: (Codec) -> ByteBuffer?) -> (Codec, ByteBuffer)? {
        let choice = choice(entropy: entropy)
        var best: (Codec, ByteBuffer)?
        var reference: CompressionModel.Reference?
        for (kind, isProbe) in [(choice.codec, false), (choice.probe, true)] {
            guard let kind, let codec = codecs[kind] else { continue }
            let started = ContinuousClock.now
            let cpuStarted = Self.threadCPUSeconds()
            let packed = attempt(codec)
            let cpu = Self.threadCPUSeconds() - cpuStarted
            let wall = (ContinuousClock.now - started).seconds
            if mode == .auto {
                let ref = isProbe ? reference : nil
                let seconds = cpu > 0 ? cpu : wall
                model.withLock {
                    $0.recordCompression(
                        kind, input: length, output: packed?.readableBytes, seconds: seconds, wall: wall, reference: ref)
                }
                reference = .init(codec: kind, ratio: Double(packed?.readableBytes ?? length) / Double(max(1, length)))
            }
            if let packed, packed.readableBytes < best?.1.readableBytes ?? .max { best = (codec, packed) }
        }
        return best
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

    /// CPU seconds used by the calling thread. A compress call is costed in CPU time, not
    /// wall time: on a busy host (the receiver on the same machine, TLS on the event
    /// loop) the wall time of a 2 ms call is mostly other threads holding the core, and
    /// it made zstd look half as fast as it is.
    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 else { return 0 }
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// One line on what `auto` measured and chose, for `FERRY_TRACE_COMPRESSION`.
    var summary: String {
        guard mode == .auto else { return "compression \(mode.rawValue)" }
        return model.withLock { m in
            func mb(_ v: Double?) -> String { v.map { String(format: "%.0f MB/s", $0 / 1e6) } ?? "?" }
            var parts = [
                "auto: \(m.current.map { "\($0)" } ?? "none") after \(m.switches) switch(es), \(m.probes) probe(s) (\(m.hintedProbes) on an entropy drop) in \(m.chunks) chunks",
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
