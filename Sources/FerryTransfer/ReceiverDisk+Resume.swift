import FerryCopy
import FerryDisk
import NIOPosix
import Synchronization

/// Resume on the receiver's side: what the journal claims is re-read from the target
/// before anything is offered to the sender.
extension ReceiverDisk {
    /// Re-reads every journaled segment from the target (on the thread pool, `workers`
    /// at a time), hashes its blocks with the session's leaf hash, and keeps — in
    /// `offered` — those whose segment digest equals the journal's. The others (the
    /// target was changed, or a write never reached it) are voided in the journal and
    /// received again like new data. Returns how many were kept and dropped.
    ///
    /// A journal is a claim; a verification claim must rest on data somebody read. This
    /// reads the receiver's own disk, not the link: the sender proves the same segments
    /// against its source afterwards, and `same` accepts only leaves matching these.
    func proveJournaled(workers: Int) async throws -> (kept: Int, dropped: Int) {
        guard let journal, let tracker, !journal.recovered.isEmpty else { return (0, 0) }
        let queue = SegmentQueue(journal.recovered.keys.sorted())
        let lost = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<max(1, workers) {
                group.addTask {
                    var dropped = 0
                    while let segment = queue.next() {
                        let intact = try await NIOThreadPool.singleton.runIfActive {
                            let expected = journal.recovered[segment]
                            let actual = try self.targetDigest(ofSegment: segment, tracker)
                            guard actual == expected else {
                                try journal.void(tracker.range(ofSegment: segment))
                                return false
                            }
                            self.offered.withLock { $0[segment] = actual }
                            return true
                        }
                        if !intact { dropped += 1 }
                    }
                    return dropped
                }
            }
            return try await group.reduce(0, +)
        }
        return (journal.recovered.count - lost, lost)
    }

    /// SHA-256 over the leaves of segment `index` as the target holds it now.
    private func targetDigest(ofSegment index: UInt64, _ tracker: SegmentTracker) throws -> [UInt8] {
        let leaves = try device.leaves(of: tracker.range(ofSegment: index), leaf: digest.leaf)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(leaves.count * 32)
        for leaf in leaves { leaf.withRawBytes { bytes.append(contentsOf: $0) } }
        return bytes.withUnsafeBytes { ResumeJournal.segmentDigest($0) }
    }

    /// After a cut: keeps the journal for a rerun, recording the target's mtime as of
    /// now (after the last write), so a rerun notices a target written in between.
    func keepJournal() {
        let mtime = (try? ResumeJournal.identity(of: device))?.1
        journal?.closeKeeping(targetModified: mtime)
    }
}

extension BlockDevice {
    /// The leaf of every block of `range` (block-aligned), read 1 MiB at a time: what a
    /// resume compares on both ends (the sender reads its source, the receiver its target).
    func leaves(of range: Range<UInt64>, leaf: LeafHash) throws -> [BlockHash] {
        let chunk = UInt64(1 << 20)
        var leaves: [BlockHash] = []
        let length: UInt64 = range.upperBound - range.lowerBound
        let block = UInt64(DiskDigest.blockSize)
        leaves.reserveCapacity(Int((length + block - 1) / block))
        let bufferSize: UInt64 = min(chunk, max(length, 1))
        var buffer = [UInt8](repeating: 0, count: Int(bufferSize))
        var position = range.lowerBound
        while position < range.upperBound {
            let n = Int(min(UInt64(buffer.count), range.upperBound - position))
            try buffer.withUnsafeMutableBytes { raw in
                let piece = UnsafeMutableRawBufferPointer(rebasing: raw[0..<n])
                try read(into: piece, at: position)
                _ = BlockRuns.split(UnsafeRawBufferPointer(piece), hashes: &leaves, leaf: leaf)
            }
            position += UInt64(n)
        }
        return leaves
    }
}
