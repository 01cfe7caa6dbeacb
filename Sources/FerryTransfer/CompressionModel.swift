import FerryProtocol
import Foundation

/// The throughput model behind `--compress auto`: a pure value fed with measurements
/// and timestamps (so tests can drive it with synthetic ones) that names the codec for
/// each chunk.
///
/// The sender is a pipeline of two stages: `parallelism` threads prepare chunks (read,
/// hash, compress) and one link carries them. Its input throughput with codec k is the
/// slower stage:
///
///     cpu_k  = parallelism / (base + cost_k)      input bytes/s the threads can prepare
///     wire_k = linkRate / ratio_k                 input bytes/s the link can carry
///     predicted_k = min(cpu_k, wire_k)            ("none": cost 0, ratio 1)
///
/// `base` (read + hash, s/byte) and `cost_k` (the compress call, CPU s/byte) are moving
/// averages; `ratio_k` (bytes sent / bytes in, 1 when the chunk went raw) is the current
/// codec's moving average, and for every other codec its paired ratio to the current
/// one on the chunks both compressed (probes) times that average: data changes along a
/// disk, and the other codecs' estimates follow it through the current one. The link's
/// rate is `--limit` or learned from the socket (`LinkRateEstimator`); with no rate
/// known the link counts as infinitely fast, so compression must first be shown to be
/// needed, by waiting.
///
/// The argmax is chosen with hysteresis (another choice must be predicted
/// `switchMargin` better). At most one chunk in `probeEvery` is also compressed with
/// another codec to keep its estimates fresh (the smaller result is sent); a codec whose probe did not pay (did not shrink below 90 %, or is
/// too slow to ever win) is probed half as often, down to one chunk in `maxProbeGap`,
/// and all probes after the first may spend at most `probeBudget` of the CPU time, so
/// incompressible data costs almost no CPU (deflate on random bytes is 20× slower than
/// reading and hashing them). A codec averaging ≥ 90 % is not chosen: its chunks would
/// go raw anyway. A probe that failed to shrink its chunk remembers the chunk's sampled
/// entropy (`CompressionHint`); a later chunk well below it is probed at once, outside the
/// budget, so compressible data after incompressible data is found in a chunk, not a
/// quarter GiB later.
struct CompressionModel: Sendable {
    typealias Kind = CompressedExtent.Codec

    struct Tuning: Sendable {
        /// Another choice must be predicted this much faster before we switch.
        var switchMargin = 1.10
        /// At most one probe per this many chunks.
        var probeEvery = 64
        /// A codec whose probes keep failing is probed at least this often.
        var maxProbeGap = 256
        /// Probes may use at most this share of the CPU time spent preparing chunks.
        var probeBudget = 0.01
        /// Weight of a new sample in the ratio and cost averages.
        var sampleWeight = 0.1
        /// Weight of a probe in a codec's paired ratio (probes are rare, and paired).
        var probeWeight = 0.25
        /// Decay per prepared chunk of the read+hash cost sums (memory ≈ 20 chunks).
        var baseDecay = 0.95
        /// How the link's rate is learned.
        var link = LinkRateEstimator.Tuning()
        /// A chunk whose sampled entropy (`CompressionHint`) is this many bits per byte below
        /// that of the chunk where a codec's last probe failed to shrink is probed with it at
        /// once, outside the probe budget: the data has changed character.
        var hintDrop = 0.75
        /// At most one such probe per this many chunks.
        var hintSpacing = 8
    }

    /// What to do with the next chunk: compress it with `codec` (nil: raw) and, for a
    /// probe, also with `probe`, and send the smaller. Probing on the same chunk pairs
    /// the samples: the probe is judged against the current choice on the same bytes,
    /// not against other parts of the disk (a tar of /usr varies 5× along its length).
    struct Choice: Equatable, Sendable {
        var codec: Kind?
        var probe: Kind?
    }

    /// The current codec's result on the chunk a probe also compressed.
    struct Reference: Sendable {
        var codec: Kind
        var ratio: Double
    }

    private struct CodecStats: Sendable {
        /// The current codec: its own ratio, sampled on every chunk.
        var ratio: Double?
        /// Any other: bytes out over the current choice's bytes out on the same chunks
        /// (decayed sums), so its ratio follows the data through the current codec's.
        var pairedOut = 0.0
        var pairedRef = 0.0
        var cost: Double?
        var sampled = false
        var probeGap: Int
        var nextProbe = 0
        var probing = false
        var seeding = false
        /// The sampled entropy of the chunk the pending probe compresses.
        var probeEntropy: Double?
        /// The sampled entropy of the chunk where this codec's last probe did not shrink it.
        var failedAt: Double?
    }

    let parallelism: Double
    let tuning: Tuning
    private let kinds: [Kind]
    private var stats: [Kind: CodecStats] = [:]

    // Read + hash cost: decayed sums, compress time subtracted in aggregate because the
    // chunk being prepared and the compress call are reported separately.
    private var prepSeconds = 0.0
    private var prepBytes = 0.0
    private var compressSeconds = 0.0
    private var pendingCompress = 0.0

    private var link: LinkRateEstimator
    /// The link's rate in wire bytes/s, when known.
    var linkRate: Double? { link.rate }

    private(set) var current: Kind?
    private(set) var switches = 0
    private(set) var chunks = 0
    private(set) var probes = 0
    private var lastProbe = 0
    private var lastHintProbe = Int.min / 2
    /// Probes started by a drop in sampled entropy.
    private(set) var hintedProbes = 0
    /// CPU seconds spent preparing chunks, and on probes (seeding included).
    private var cpuSeconds = 0.0
    private var probeSeconds = 0.0
    /// Average bytes per compress call.
    private var chunkBytes = Double(1 << 20)

    /// `usable`: codecs both ends have; `parallelism`: threads preparing chunks at once;
    /// `limit`: `--limit` in bytes/s.
    init(usable: [Kind], parallelism: Int, limit: Double?, tuning: Tuning = Tuning()) {
        kinds = usable
        self.parallelism = Double(max(1, parallelism))
        self.tuning = tuning
        link = LinkRateEstimator(limit: limit, tuning: tuning.link)
        for k in usable { stats[k] = CodecStats(probeGap: tuning.probeEvery) }
    }

    /// The read + hash cost in seconds per byte, once measured.
    var baseCost: Double? {
        guard prepBytes > 0 else { return nil }
        return max(0, prepSeconds - compressSeconds) / prepBytes
    }

    /// The current choice's ratio (1 for raw).
    private var currentRatio: Double? {
        guard let c = current else { return 1 }
        return stats[c]?.ratio
    }

    /// Estimated bytes out per byte in with `k`: measured for the current codec, and for
    /// the others their paired ratio to it times its ratio.
    func ratio(_ k: Kind) -> Double? {
        guard let s = stats[k] else { return nil }
        if k == current { return s.ratio }
        guard s.pairedRef > 0, let base = currentRatio else { return nil }
        return min(1, s.pairedOut / s.pairedRef * base)
    }

    func cost(_ k: Kind) -> Double? { stats[k]?.cost }

    /// Predicted input bytes/s with `k` (nil: raw); nil when `k` is unmeasured or would
    /// not shrink chunks enough to be sent compressed.
    func predicted(_ k: Kind?) -> Double? {
        let base = baseCost ?? 0
        var perByte = base
        var shrink = 1.0
        if let k {
            guard let r = ratio(k), let c = cost(k), r < CompressionPolicy.worthwhileRatio else { return nil }
            perByte += c
            shrink = r
        }
        let cpu = perByte > 0 ? parallelism / perByte : .infinity
        let wire = linkRate.map { $0 / shrink } ?? .infinity
        return min(cpu, wire)
    }

    /// The choice for the next chunk at time `now` (seconds, any origin); `entropy` is the
    /// chunk's sampled entropy in bits per byte (`CompressionHint`), when measured.
    mutating func choose(now: Double, entropy: Double? = nil) -> Choice {
        chunks += 1
        link.start(at: now)
        decide()
        // Seed: try every codec once, one at a time, each paired with the choice the
        // ones before it led to.
        if !kinds.contains(where: { stats[$0]?.seeding == true }),
            let k = kinds.first(where: { stats[$0]?.sampled == false })
        {
            stats[k]?.probing = true
            stats[k]?.seeding = true
            stats[k]?.probeEntropy = entropy
            probes += 1
            // While sending raw, pair it with a codec already seeded: the first chunks
            // of a disk differ too much to compare codecs on different ones.
            return Choice(codec: current ?? kinds.first { stats[$0]?.sampled == true }, probe: k)
        }
        // The data changed character (text after random bytes): a codec that failed on the
        // old data is tried on the new at once, not after its backed-off gap.
        if let entropy, chunks - lastHintProbe >= tuning.hintSpacing,
            let k = kinds.first(where: { k in
                guard k != current, let s = stats[k], !s.probing, let failed = s.failedAt else { return false }
                return entropy < failed - tuning.hintDrop
            })
        {
            lastHintProbe = chunks
            lastProbe = chunks
            probes += 1
            hintedProbes += 1
            if var s = stats[k] {
                s.probing = true
                s.probeEntropy = entropy
                s.failedAt = nil
                s.probeGap = tuning.probeEvery
                s.nextProbe = chunks + s.probeGap
                stats[k] = s
            }
            return Choice(codec: current, probe: k)
        }
        if chunks - lastProbe >= tuning.probeEvery,
            let k = kinds.filter({ $0 != current && mayProbe($0) })
                .min(by: { (stats[$0]?.nextProbe ?? 0) < (stats[$1]?.nextProbe ?? 0) })
        {
            lastProbe = chunks
            probes += 1
            if var s = stats[k] {
                s.nextProbe = chunks + s.probeGap
                s.probing = true
                s.probeEntropy = entropy
                stats[k] = s
            }
            return Choice(codec: current, probe: k)
        }
        return Choice(codec: current, probe: nil)
    }

    /// Whether `k` is due a probe and its expected CPU fits the probe budget.
    private func mayProbe(_ k: Kind) -> Bool {
        guard let s = stats[k], s.nextProbe <= chunks, !s.probing else { return false }
        let expected = (s.cost ?? 0) * chunkBytes
        return probeSeconds + expected <= tuning.probeBudget * cpuSeconds
    }

    /// Moves to the best predicted choice when it beats the current one by the margin.
    private mutating func decide() {
        var best = current
        var bestRate = predicted(current) ?? 0
        let currentRate = bestRate
        for candidate in [nil] + kinds.map(Optional.some) where candidate != current {
            if let p = predicted(candidate), p > bestRate {
                best = candidate
                bestRate = p
            }
        }
        // An ineligible current choice (rate 0) is left at once.
        if best != current && (currentRate == 0 || bestRate >= currentRate * tuning.switchMargin) {
            rebase(to: best)
            switches += 1
        }
    }

    /// Makes `next` current: its estimated ratio becomes its own average, and every other
    /// codec's paired ratio is re-expressed against it (the old current's too).
    private mutating func rebase(to next: Kind?) {
        let old = current
        let oldRatio = currentRatio ?? 1
        let nextRatio = next.flatMap { ratio($0) } ?? 1
        var updated = stats
        for (k, s) in stats {
            var u = s
            let weight = max(s.pairedRef, 1)
            if k == next {
                u.ratio = nextRatio
            } else if k == old {
                u.pairedOut = oldRatio * weight
                u.pairedRef = nextRatio * weight
            } else if s.pairedRef > 0 {
                u.pairedOut = s.pairedOut / s.pairedRef * oldRatio * weight
                u.pairedRef = nextRatio * weight
            }
            updated[k] = u
        }
        stats = updated
        current = next
    }

    /// One compress call: `input` bytes became `output` (nil: not below 90 %, sent raw)
    /// using `seconds` of CPU and `wall` seconds (default: the same). For a probe,
    /// `reference` is what the current codec did with the same chunk: the ratio is scaled
    /// to the current codec's recent average, so it says how `k` compares on this data
    /// rather than how compressible this one chunk was. (Costs are not scaled: a 2 ms
    /// lz4 call is too noisy a yardstick.)
    mutating func recordCompression(
        _ k: Kind, input: Int, output: Int?, seconds: Double, wall: Double? = nil, reference: Reference? = nil
    ) {
        guard input > 0, var s = stats[k] else { return }
        let ratio = Double(output ?? input) / Double(input)
        let cost = max(0, seconds) / Double(input)
        let w = tuning.sampleWeight
        if k == current {
            s.ratio = s.ratio.map { $0 * (1 - w) + ratio * w } ?? ratio
        } else if reference?.codec == current || (current == nil && reference == nil) {
            // Paired with what the current choice sent for the same bytes (raw: all of them).
            let d = s.sampled ? 1 - tuning.probeWeight : 0
            s.pairedOut = s.pairedOut * d + ratio
            s.pairedRef = s.pairedRef * d + (reference?.ratio ?? 1)
        } else if let ref = reference, let r = stats[ref.codec], r.pairedOut > 0, r.pairedRef > 0 {
            // Paired with another codec (seeding while raw): through that codec's own pairing.
            let d = s.sampled ? 1 - tuning.probeWeight : 0
            s.pairedOut = s.pairedOut * d + ratio
            s.pairedRef = s.pairedRef * d + ref.ratio * r.pairedRef / r.pairedOut
        }
        s.cost = s.cost.map { $0 * (1 - w) + cost * w } ?? cost
        s.sampled = true
        chunkBytes = chunkBytes * (1 - w) + Double(input) * w
        if s.probing {
            s.probing = false
            if !s.seeding { probeSeconds += max(0, seconds) }
            s.seeding = false
            // A probe that could not have won backs off; one that might resets.
            let cpu = parallelism / ((baseCost ?? 0) + cost)
            let hopeless = ratio >= CompressionPolicy.worthwhileRatio || cpu * tuning.switchMargin < (predicted(current) ?? 0)
            s.probeGap = hopeless ? min(tuning.maxProbeGap, s.probeGap * 2) : tuning.probeEvery
            s.nextProbe = chunks + s.probeGap
            // Remembered so that data of a lower entropy later brings the codec back at once.
            s.failedAt = ratio >= CompressionPolicy.worthwhileRatio ? s.probeEntropy : nil
            s.probeEntropy = nil
        }
        stats[k] = s
        pendingCompress += max(0, wall ?? seconds)
    }

    /// A request was read, hashed (and its chunks compressed) in `seconds`.
    mutating func recordPrepared(bytes: Int, seconds: Double) {
        guard bytes > 0 else { return }
        let d = tuning.baseDecay
        cpuSeconds += max(0, seconds)
        prepSeconds = prepSeconds * d + max(0, seconds)
        prepBytes = prepBytes * d + Double(bytes)
        compressSeconds = compressSeconds * d + pendingCompress
        pendingCompress = 0
    }

    /// A worker finished a request at `now`: it spent `work` seconds preparing it, then
    /// `wait` seconds until its `wireBytes` reached the socket.
    mutating func recordSent(wireBytes: Int, work: Double, wait: Double, now: Double) {
        link.record(wireBytes: wireBytes, work: work, wait: wait, now: now)
    }
}
