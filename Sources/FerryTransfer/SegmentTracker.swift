import Crypto
import FerryCopy
import Synchronization

/// Follows which segments of a disk being received are complete, so they can be
/// journaled once flushed. Extents arrive out of order and cut across segments;
/// each segment keeps a leaf table (32 bytes per block, 32 KiB for 64 MiB) only
/// while it is partly filled — a segment entirely inside one zero run never gets one.
final class SegmentTracker: Sendable {
    let segmentSize: UInt64
    let diskSize: UInt64
    /// Segments never journaled (block 0 of an in-place target, written last).
    let excluded: Set<UInt64>
    /// The block hash of the session (zero blocks are filled in with its zero leaf).
    let leaf: LeafHash

    private struct Fill {
        var leaves: [UInt8]
        var filledBlocks: Int
    }
    private struct State {
        var filling: [UInt64: Fill] = [:]
        /// Complete, not yet flushed and journaled.
        var complete: [(UInt64, [UInt8])] = []
    }
    private let state = Mutex(State())

    init(segmentSize: Int, diskSize: UInt64, excluded: Set<UInt64>, leaf: LeafHash) {
        self.leaf = leaf
        self.segmentSize = UInt64(segmentSize)
        self.diskSize = diskSize
        self.excluded = excluded
    }

    func range(ofSegment index: UInt64) -> Range<UInt64> {
        let start = index * segmentSize
        return start..<min(diskSize, start + segmentSize)
    }

    func blocks(inSegment index: UInt64) -> Int {
        let r = range(ofSegment: index)
        return Int((r.upperBound - r.lowerBound + UInt64(DiskDigest.blockSize) - 1) / UInt64(DiskDigest.blockSize))
    }

    /// Records verified leaves (32 bytes per block) for the blocks starting at `offset`.
    func record(offset: UInt64, leaves: UnsafeRawBufferPointer) {
        let block = UInt64(DiskDigest.blockSize)
        var blockIndex = offset / block
        var position = 0
        state.withLock { s in
            while position < leaves.count {
                let segment = blockIndex * block / segmentSize
                let firstBlock = range(ofSegment: segment).lowerBound / block
                let within = Int(blockIndex - firstBlock)
                let total = blocks(inSegment: segment)
                let n = min(total - within, (leaves.count - position) / 32)
                guard n > 0 else { return }
                if !excluded.contains(segment) {
                    var fill = s.filling[segment] ?? Fill(leaves: [UInt8](repeating: 0, count: total * 32), filledBlocks: 0)
                    fill.leaves.withUnsafeMutableBytes {
                        UnsafeMutableRawBufferPointer(rebasing: $0[within * 32..<(within + n) * 32])
                            .copyMemory(from: UnsafeRawBufferPointer(rebasing: leaves[position..<position + n * 32]))
                    }
                    fill.filledBlocks += n
                    if fill.filledBlocks >= total {
                        s.filling[segment] = nil
                        s.complete.append((segment, fill.leaves.withUnsafeBytes { ResumeJournal.segmentDigest($0) }))
                    } else {
                        s.filling[segment] = fill
                    }
                }
                position += n * 32
                blockIndex += UInt64(n)
            }
        }
    }

    /// Records a zero run `[offset, offset+length)` (block-aligned, or ending the disk).
    func recordZeros(offset: UInt64, length: UInt64) {
        let block = UInt64(DiskDigest.blockSize)
        var position = offset
        let end = offset + length
        while position < end {
            let segment = position / segmentSize
            let r = range(ofSegment: segment)
            let stop = min(end, r.upperBound)
            if position == r.lowerBound && stop == r.upperBound {
                // The whole segment is zeros: its digest without a leaf table.
                if !excluded.contains(segment) {
                    let digest = zeroDigest(blocks: blocks(inSegment: segment), lastLength: Int(r.upperBound - (r.upperBound - 1) / block * block))
                    state.withLock { $0.complete.append((segment, digest)) }
                }
            } else {
                let count = Int((stop - position + block - 1) / block)
                var leaves = [UInt8]()
                leaves.reserveCapacity(count * 32)
                for i in 0..<count {
                    let blockStart = position + UInt64(i) * block
                    leaves += leaf.zeros(count: Int(min(block, diskSize - blockStart))).bytes
                }
                leaves.withUnsafeBytes { record(offset: position, leaves: $0) }
            }
            position = stop
        }
    }

    /// SHA-256 over `blocks` zero leaves, the last one of `lastLength` bytes.
    func zeroDigest(blocks: Int, lastLength: Int) -> [UInt8] {
        var hasher = SHA256()
        let full = leaf.zeroBlock.bytes
        for _ in 0..<max(0, blocks - 1) { hasher.update(data: full) }
        if blocks > 0 { hasher.update(data: leaf.zeros(count: lastLength).bytes) }
        return Array(hasher.finalize())
    }

    /// Takes the segments completed since the last call (to be journaled after a flush).
    func takeComplete() -> [(UInt64, [UInt8])] {
        state.withLock { s in
            defer { s.complete.removeAll() }
            return s.complete
        }
    }
}
