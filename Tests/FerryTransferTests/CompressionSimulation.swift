import FerryProtocol
@testable import FerryTransfer

/// A tiny model of the sender's pipeline for driving `CompressionModel`: `workers` on
/// `parallelism` cores prepare 1 MiB chunks (read + hash + compress, in CPU seconds per byte) and a
/// link of a given rate carries what they produce. The policy's choice changes both
/// stages, so the waits it is fed are the consequences of its own decisions — the loop
/// that made the old threshold policy flap.
struct CompressionSimulation {
    typealias Kind = CompressedExtent.Codec

    /// How one codec behaves on the data.
    struct CodecData {
        var ratio: Double
        /// CPU seconds per input byte.
        var cost: Double
    }

    /// Cores preparing chunks, and requests in flight (`--workers`).
    var parallelism = 2
    var workers = 4
    var chunkSize = 1 << 20
    /// Read + hash, seconds per byte.
    var base = 1 / 800e6
    var codecs: [Kind: CodecData]
    /// Link bytes/s at a simulated time.
    var link: (Double) -> Double
    /// ± share of deterministic noise on each chunk's compressibility and speed (data is
    /// never uniform), and a third of it on each codec's.
    var noise = 0.15
    var seed: UInt64 = 0x5eed
    /// Data that changes along the disk: from chunk `from` (1-based) on, the codecs behave as
    /// `codecs` and a chunk's sampled entropy (`CompressionHint`) is `entropy` (nil: not
    /// sampled). Before the first phase, the codecs above and no entropy.
    var phases: [(from: Int, codecs: [Kind: CodecData], entropy: Double?)] = []

    struct Result {
        var seconds = 0.0
        var chunksBy: [Kind?: Int] = [:]
        /// The model's choice after each chunk, with the time it was sent.
        var timeline: [(time: Double, chunk: Int, choice: Kind?)] = []
        var compressSeconds = 0.0
        var baseSeconds = 0.0
        var model: CompressionModel

        func share(_ k: Kind?) -> Double {
            Double(chunksBy[k] ?? 0) / Double(max(1, chunksBy.values.reduce(0, +)))
        }
    }

    /// Sends `chunks` chunks, asking `model` for each, or always `fixed` when given.
    func run(chunks: Int, model start: CompressionModel, fixed: Kind?? = nil) -> Result {
        var result = Result(model: start)
        var rng = seed
        func jitter() -> Double {
            // xorshift64: deterministic, so a failure reproduces.
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            return 1 + noise * (Double(rng % 2001) / 1000 - 1)
        }
        let size = Double(chunkSize)
        // Each worker prepares a chunk on the first free core (waiting for one if all
        // are busy, as on the blocking pool), then holds it until the link has carried
        // it; the link carries chunks one after another.
        var workerFree = [Double](repeating: 0, count: workers)
        var coreFree = [Double](repeating: 0, count: parallelism)
        var linkFree = 0.0
        for sent in 1...max(1, chunks) {
            let w = workerFree.indices.min { workerFree[$0] < workerFree[$1] } ?? 0
            let c = coreFree.indices.min { coreFree[$0] < coreFree[$1] } ?? 0
            let now = max(workerFree[w], coreFree[c])
            let phase = phases.last { $0.from <= sent }
            let codecs = phase?.codecs ?? self.codecs
            let choice = fixed.map { CompressionModel.Choice(codec: $0, probe: nil) }
                ?? result.model.choose(now: now, entropy: phase?.entropy)
            result.chunksBy[choice.codec, default: 0] += 1
            var cpu = base * size * jitter()
            result.baseSeconds += cpu
            var bytes = size
            // This chunk's compressibility and speed move every codec alike, plus a little each.
            let ratioFactor = jitter()
            let costFactor = jitter()
            var reference: CompressionModel.Reference?
            for (k, isProbe) in [(choice.codec, false), (choice.probe, true)] {
                guard let k, let data = codecs[k] else { continue }
                let own = 1 + (jitter() - 1) / 3
                let packing = data.cost * costFactor * own * size
                let packed = min(size, data.ratio * ratioFactor * own * size)
                let worthwhile = packed < size * CompressionPolicy.worthwhileRatio
                result.model.recordCompression(
                    k, input: chunkSize, output: worthwhile ? Int(packed) : nil, seconds: packing,
                    reference: isProbe ? reference : nil)
                reference = .init(codec: k, ratio: worthwhile ? packed / size : 1)
                result.compressSeconds += packing
                cpu += packing
                if worthwhile { bytes = min(bytes, packed) }
            }
            result.model.recordPrepared(bytes: chunkSize, seconds: cpu)
            let prepared = now + cpu
            coreFree[c] = prepared
            let done = max(prepared, linkFree) + bytes / link(max(prepared, linkFree))
            linkFree = done
            result.model.recordSent(
                wireBytes: Int(bytes), work: prepared - workerFree[w], wait: done - prepared, now: done)
            workerFree[w] = done
            result.seconds = max(result.seconds, done)
            result.timeline.append((done, sent, result.model.current))
        }
        return result
    }

    /// The fastest fixed choice's time.
    func bestFixed(chunks: Int) -> (choice: Kind?, seconds: Double) {
        let model = CompressionModel(usable: [], parallelism: parallelism, limit: nil)
        let options: [Kind?] = [nil] + codecs.keys.sorted { $0.rawValue < $1.rawValue }.map(Optional.some)
        let timed = options.map { ($0, run(chunks: chunks, model: model, fixed: .some($0)).seconds) }
        return timed.min { $0.1 < $1.1 } ?? (nil, 0)
    }
}
