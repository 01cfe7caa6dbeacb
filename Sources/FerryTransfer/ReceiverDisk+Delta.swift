import FerryCopy
import FerryDisk
import FerryProtocol
import NIOCore
import NIOPosix
import Synchronization

/// Delta sync on the receiver's side (docs/protocol.md, "Delta sync"). The target holds
/// an earlier copy: every segment of it is read and hashed here, on this host's disk
/// (never over the link), and offered to the sender as a segment digest; for a segment
/// whose digest differs from the source's, the sender asks for the block leaves, which
/// are read again from the target and kept only until the sender has covered that
/// segment (with data, zeros or `sameBlocks`).
extension ReceiverDisk {
    /// Hashes every segment of the target not offered already (a resume journal may have
    /// proven some) and offers it, `workers` segments at a time, handing each worker's
    /// digests to `send` in batches of `batch` as they are ready (the sender compares them
    /// while this goes on). Memory: one digest per segment (32 bytes per 4 MiB) and one
    /// read buffer per worker.
    func hashTarget(
        workers: Int, batch: Int = 64, send: @escaping @Sendable ([SegmentList.Entry]) async throws -> Void
    ) async throws -> Int {
        guard delta != nil, let tracker else { return 0 }
        let segmentSize = UInt64(tracker.segmentSize)
        let count = (description.size + segmentSize - 1) / segmentSize
        let known = offered.withLock { Set($0.keys) }
        let queue = SegmentQueue((0..<count).filter { !known.contains($0) })
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<max(1, workers) {
                group.addTask {
                    var hashed = 0
                    var ready: [SegmentList.Entry] = []
                    while let segment = queue.next() {
                        let digest = try await NIOThreadPool.singleton.runIfActive {
                            let leaves = try self.targetLeaves(tracker.range(ofSegment: segment))
                            let digest = leaves.withUnsafeReadableBytes { ResumeJournal.segmentDigest($0) }
                            // Offered before it is listed: `same` for it may come at once.
                            self.offered.withLock { $0[segment] = digest }
                            return digest
                        }
                        ready.append(SegmentList.Entry(index: segment, digest: digest))
                        if ready.count >= batch {
                            try await send(ready)
                            ready.removeAll(keepingCapacity: true)
                        }
                        hashed += 1
                    }
                    if !ready.isEmpty { try await send(ready) }
                    return hashed
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// The leaves of `range` of the target, as the wire carries them (32 bytes per block).
    func targetLeaves(_ range: Range<UInt64>) throws -> ByteBuffer {
        let leaves = try device.leaves(of: range, leaf: digest.leaf)
        var wire = ByteBufferAllocator().buffer(capacity: leaves.count * WireLimits.hashSize)
        for leaf in leaves { leaf.withRawBytes { _ = wire.writeBytes($0) } }
        return wire
    }

    /// Answers a block-hash request: the segment must be one this receiver offered, asked
    /// for once, with fewer than `DeltaRules.maxOutstandingRequests` still uncovered.
    func hashBlocks(_ request: BlockRequest) throws -> BlockHashList {
        guard let delta, let tracker else {
            throw ProtocolError(.protocolViolation, "block hashes of disk \(description.index) asked for, but its target holds no earlier copy")
        }
        guard offered.withLock({ $0[request.segment] }) != nil else {
            throw ProtocolError(.outOfRange, "block hashes of segment \(request.segment) of disk \(description.index) asked for; it was never offered")
        }
        let range = tracker.range(ofSegment: request.segment)
        try delta.reserve(request.segment)
        let leaves = try targetLeaves(range)
        delta.begin(request.segment, range: range, leaves: leaves)
        // The segment is compared block by block; what data or zeros then cover counts as changed.
        counters.add(compared: UInt64(range.count), changed: 0)
        return BlockHashList(disk: description.index, offset: range.lowerBound, length: Int(range.count), leaves: leaves)
    }

    /// Blocks the sender found unchanged: their leaves (sent in `blockHashes`) feed the
    /// digest, and the journal's tracker, as if they had been written.
    func sameBlocks(_ same: SameBlocks) throws {
        guard let delta else {
            throw ProtocolError(.protocolViolation, "unchanged blocks claimed for disk \(description.index), which holds no earlier copy")
        }
        let range = same.offset..<same.offset + UInt64(same.length)
        let leaves = try delta.take(range)
        leaves.withUnsafeBytes { raw in
            var hashes: [BlockHash] = []
            hashes.reserveCapacity(raw.count / WireLimits.hashSize)
            var i = 0
            while i + WireLimits.hashSize <= raw.count {
                if let leaf = BlockHash(raw: UnsafeRawBufferPointer(rebasing: raw[i..<i + WireLimits.hashSize])) { hashes.append(leaf) }
                i += WireLimits.hashSize
            }
            digest.add(.hashes(hashes), at: same.offset / UInt64(DiskDigest.blockSize))
            tracker?.record(offset: same.offset, leaves: raw)
        }
        counters.done.add(UInt64(same.length), ordering: .relaxed)
    }
}

/// The leaf tables of the segments whose block hashes were sent and that the sender has
/// not yet covered. A table goes as soon as its segment is covered; a segment is asked
/// for at most once; at most `maxPending` tables are held (2 KiB each for 4 MiB segments).
final class DeltaBlocks: Sendable {
    private struct Pending {
        var start: UInt64
        var leaves: [UInt8]
        /// Blocks not yet covered by data, zeros or `sameBlocks`.
        var remaining: Int
    }
    private struct State {
        var asked: Set<UInt64> = []
        var pending: [UInt64: Pending] = [:]
        var reserved = 0
    }
    private let state = Mutex(State())
    let maxPending: Int
    private static let block = UInt64(DiskDigest.blockSize)

    init(maxPending: Int) { self.maxPending = maxPending }

    var pendingCount: Int { state.withLock { $0.pending.count + $0.reserved } }

    /// Claims `segment` before its leaves are read; refuses a repeat and a flood.
    func reserve(_ segment: UInt64) throws(ProtocolError) {
        let refusal: ProtocolError? = state.withLock { s in
            if s.asked.contains(segment) {
                return ProtocolError(.protocolViolation, "block hashes of segment \(segment) asked for twice")
            }
            if s.pending.count + s.reserved >= maxPending {
                return ProtocolError(.protocolViolation, "more than \(maxPending) block-hash requests outstanding; refused as a flood")
            }
            s.asked.insert(segment)
            s.reserved += 1
            return nil
        }
        if let refusal { throw refusal }
    }

    func begin(_ segment: UInt64, range: Range<UInt64>, leaves: ByteBuffer) {
        let blocks = Int((UInt64(range.count) + Self.block - 1) / Self.block)
        state.withLock { s in
            s.reserved -= 1
            s.pending[segment] = Pending(start: range.lowerBound, leaves: Array(leaves.readableBytesView), remaining: blocks)
        }
    }

    /// The kept leaves of `range`, which must lie inside one pending segment.
    func take(_ range: Range<UInt64>) throws(ProtocolError) -> [UInt8] {
        let taken: [UInt8]? = state.withLock { s in
            guard let (segment, p) = s.pending.first(where: { entry in
                let end = entry.value.start + UInt64(entry.value.leaves.count / 32) * Self.block
                return range.lowerBound >= entry.value.start && range.lowerBound < end
            }) else { return nil }
            let first = Int((range.lowerBound - p.start) / Self.block)
            let count = Int((UInt64(range.count) + Self.block - 1) / Self.block)
            guard first + count <= p.leaves.count / 32 else { return nil }
            let slice = Array(p.leaves[first * 32..<(first + count) * 32])
            var q = p
            q.remaining -= count
            s.pending[segment] = q.remaining > 0 ? q : nil
            return slice
        }
        guard let taken else {
            throw ProtocolError(.outOfRange, "unchanged blocks \(range) do not lie inside a segment whose block hashes were sent")
        }
        return taken
    }

    /// Data or zeros written over `range`: the pending segments it covers need fewer blocks.
    /// Returns the bytes of `range` that lay in such segments: blocks the sender found changed.
    @discardableResult
    func cover(_ range: Range<UInt64>) -> UInt64 {
        state.withLock { s in
            guard !s.pending.isEmpty else { return 0 }
            var changed: UInt64 = 0
            for (segment, p) in s.pending {
                let end = p.start + UInt64(p.leaves.count / 32) * Self.block
                let lo = max(p.start, range.lowerBound)
                let hi = min(end, range.upperBound)
                guard lo < hi else { continue }
                var q = p
                q.remaining -= Int((hi - lo + Self.block - 1) / Self.block)
                s.pending[segment] = q.remaining > 0 ? q : nil
                changed += hi - lo
            }
            return changed
        }
    }
}
