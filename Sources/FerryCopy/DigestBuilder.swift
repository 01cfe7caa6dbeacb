import Crypto
import Synchronization

/// Builds a `DiskDigest` from block hashes that arrive out of order from several
/// workers. Each submission covers a run of consecutive blocks; runs are applied to
/// the 32 stream hashers strictly in block order, and the ones that arrive early wait
/// (at most one run per request in flight, so memory stays bounded).
public final class DigestBuilder: Sendable {
    /// A run of consecutive blocks: their hashes, or `count` blocks of zeros.
    public enum Run: Sendable {
        case hashes([BlockHash])
        case zeros(UInt64)

        var count: UInt64 {
            switch self {
            case .hashes(let h): return UInt64(h.count)
            case .zeros(let n): return n
            }
        }
    }

    private struct State {
        var streams: [SHA256] = Array(repeating: SHA256(), count: DiskDigest.streams)
        var nextBlock: UInt64 = 0
        var pending: [UInt64: Run] = [:]
    }

    public let size: UInt64
    public let blockCount: UInt64
    /// The hash of each block: callers hash data blocks with it; zero blocks are added here.
    public let leaf: LeafHash
    private let state = Mutex(State())

    public init(size: UInt64, leaf: LeafHash = .sha256) {
        self.size = size
        self.leaf = leaf
        blockCount = (size + UInt64(DiskDigest.blockSize) - 1) / UInt64(DiskDigest.blockSize)
    }

    /// The length of block `index`: 64 KiB except perhaps the last one.
    public func length(ofBlock index: UInt64) -> Int {
        let start = index * UInt64(DiskDigest.blockSize)
        return Int(min(UInt64(DiskDigest.blockSize), size - start))
    }

    /// Adds a run starting at block `first`.
    public func add(_ run: Run, at first: UInt64) {
        state.withLock { state in
            if first != state.nextBlock {
                state.pending[first] = run
                return
            }
            apply(run, at: first, to: &state)
            while let next = state.pending.removeValue(forKey: state.nextBlock) {
                apply(next, at: state.nextBlock, to: &state)
            }
        }
    }

    /// Adds the zero blocks covering bytes `[offset, offset+length)`; both ends on block boundaries
    /// (or the disk's end).
    public func addZeros(offset: UInt64, length: UInt64) {
        let first = offset / UInt64(DiskDigest.blockSize)
        let count = (length + UInt64(DiskDigest.blockSize) - 1) / UInt64(DiskDigest.blockSize)
        if count > 0 { add(.zeros(count), at: first) }
    }

    private func apply(_ run: Run, at first: UInt64, to state: inout State) {
        let streamCount = UInt64(DiskDigest.streams)
        switch run {
        case .hashes(let hashes):
            for (i, hash) in hashes.enumerated() {
                let index = first + UInt64(i)
                hash.update(&state.streams[Int(index % streamCount)])
            }
        case .zeros(let count):
            // The disk's last block may be short, and a short zero block has its own leaf.
            let last = first + count - 1
            let lastIsShort = last == blockCount - 1 && length(ofBlock: last) != DiskDigest.blockSize
            applyZeroLeaves(from: first, count: lastIsShort ? count - 1 : count, to: &state)
            if lastIsShort {
                leaf.zeros(count: length(ofBlock: last)).update(&state.streams[Int(last % streamCount)])
            }
        }
        state.nextBlock = first + run.count
    }

    /// Feeds `count` full zero leaves starting at block `first`. Each stream receives
    /// about count/32 identical leaves, fed in batches so a 100 GiB hole costs a few
    /// large hash updates per stream instead of millions of small ones.
    private func applyZeroLeaves(from first: UInt64, count: UInt64, to state: inout State) {
        guard count > 0 else { return }
        let streamCount = UInt64(DiskDigest.streams)
        for s in 0..<streamCount {
            // Blocks i in [first, first+count) with i % 32 == s.
            let offsetInCycle = (s + streamCount - first % streamCount) % streamCount
            guard offsetInCycle < count else { continue }
            var leaves = (count - offsetInCycle + streamCount - 1) / streamCount
            ZeroLeafBatch.of(leaf).withBatch { batch, perBatch in
                while leaves > 0 {
                    let n = Int(min(leaves, UInt64(perBatch)))
                    state.streams[Int(s)].update(bufferPointer: UnsafeRawBufferPointer(rebasing: batch[0..<n * 32]))
                    leaves -= UInt64(n)
                }
            }
        }
    }

    /// Finishes the digest. Fails if some blocks never arrived.
    public func finalize() throws -> DiskDigest {
        try state.withLock { state in
            guard state.nextBlock == blockCount, state.pending.isEmpty else {
                throw DigestError(
                    "the digest is incomplete: blocks up to \(state.nextBlock) of \(blockCount) were hashed, \(state.pending.count) runs out of order")
            }
            var root = SHA256()
            for stream in state.streams {
                let d = stream.finalize()
                d.withUnsafeBytes { root.update(bufferPointer: $0) }
            }
            return DiskDigest(bytes: Array(root.finalize()), leaf: leaf)
        }
    }
}

public struct DigestError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// 4096 copies of the zero-block leaf, built once per leaf hash.
private final class ZeroLeafBatch: Sendable {
    static let sha256 = ZeroLeafBatch(.sha256)
    static let xxh3 = ZeroLeafBatch(.xxh3)
    static let leaves = 4096
    private let buffer: [UInt8]

    /// The batch of the last keyed leaf asked for (a session has one key per disk).
    private static let keyed = Mutex<(key: LeafKey, batch: ZeroLeafBatch)?>(nil)

    static func of(_ leaf: LeafHash) -> ZeroLeafBatch {
        switch leaf {
        case .sha256: return sha256
        case .xxh3: return xxh3
        case .xxh3Keyed(let key):
            return keyed.withLock { cached in
                if let cached, cached.key == key { return cached.batch }
                let batch = ZeroLeafBatch(leaf)
                cached = (key, batch)
                return batch
            }
        }
    }

    private init(_ leaf: LeafHash) {
        let one = leaf.zeroBlock.bytes
        var bytes: [UInt8] = []
        bytes.reserveCapacity(one.count * Self.leaves)
        for _ in 0..<Self.leaves { bytes.append(contentsOf: one) }
        buffer = bytes
    }

    func withBatch(_ body: (UnsafeRawBufferPointer, Int) -> Void) {
        buffer.withUnsafeBytes { body($0, Self.leaves) }
    }
}
