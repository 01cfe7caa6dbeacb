import FerryCopy
import FerryDisk
import FerryFormats
import FerryProtocol
import NIOCore
import Synchronization

/// One target being received: checks every block against its hash before writing,
/// feeds the verified leaves to the digest, and finishes through `TargetCommit`
/// (flush, compare with the sender's digest, journal, block 0, rename).
///
/// Called from thread-pool threads, several extents at a time (positional writes
/// at distinct offsets, which `BlockDevice` allows). Ranges were approved by the
/// `ReceiverStateMachine` already; the device re-checks them on every write.
final class ReceiverDisk: Sendable {
    let description: DiskDescription
    let commit: TargetCommit
    let digest: DigestBuilder
    let counters: CopyCounters
    /// The target read as zeros before we started (a new sparse file).
    let knownZero: Bool
    /// Resume bookkeeping (nil for targets that cannot resume: stdout, null:).
    let journal: ResumeJournal?
    let tracker: SegmentTracker?
    /// Journaled segments just re-read from the target and found intact: the only ones
    /// offered to the sender, and the only ones `same` accepts (see `proveJournaled`).
    let offered = Mutex<[UInt64: [UInt8]]>([:])
    /// Bytes of segments flushed and journaled (what `Ack.durable` reports).
    let durable = Atomic<UInt64>(0)
    private let checkpointing = Mutex(false)
    /// Delta sync: the target held an earlier copy and every segment of it is offered
    /// (`ReceiverDisk+Delta.swift`); nil for an ordinary transfer.
    let delta: DeltaBlocks?

    init(
        description: DiskDescription, target: LocalTarget, format: ImageFormat = .raw, counters: CopyCounters,
        journal: ResumeJournal?, leaf: LeafHash, delta: Bool = false
    ) throws {
        self.description = description
        commit = try TargetCommit(target: target, format: format, virtualSize: description.size)
        self.counters = counters
        self.journal = journal
        digest = DigestBuilder(size: description.size, leaf: leaf)
        knownZero = commit.knownZero
        self.delta = delta && journal != nil ? DeltaBlocks(maxPending: DeltaRules.maxOutstandingRequests) : nil
        // A block device holds its first block in memory until the commit
        // (`FirstBlockHold`): segment 0 is never durable before then.
        let hold = target.device is FirstBlockHold
        tracker = journal.map {
            SegmentTracker(segmentSize: $0.segmentSize, diskSize: description.size, excluded: hold ? [0] : [], leaf: leaf)
        }
    }

    var target: LocalTarget { commit.target }
    /// What extents are written to: the format writer over the target (block 0 held for a device).
    var device: any BlockDevice { commit.device }

    /// Verifies and writes one data extent. Nothing is written unless every block matches.
    /// `wireBytes`: what the extent took on the wire, when compressed.
    func write(_ extent: DataExtent, wireBytes: Int? = nil) throws {
        let stages = counters.stages
        try extent.data.withUnsafeReadableBytes { data in
            try extent.hashes.withUnsafeReadableBytes { hashes in
                let mismatch = stages.measure(.cpu) { BlockRuns.firstMismatch(data, expected: hashes, leaf: digest.leaf) }
                if let bad = mismatch {
                    let at = extent.offset + UInt64(bad * DiskDigest.blockSize)
                    throw ProtocolError(
                        .verification, "block at offset \(at) of disk \(description.index) does not match its hash; nothing was written for it")
                }
                var leaves: [BlockHash] = []
                leaves.reserveCapacity(hashes.count / 32)
                var i = 0
                while i + 32 <= hashes.count {
                    if let leaf = BlockHash(raw: UnsafeRawBufferPointer(rebasing: hashes[i..<i + 32])) { leaves.append(leaf) }
                    i += 32
                }
                try journal?.void(extent.offset..<extent.offset + UInt64(extent.length))
                try stages.measure(.targetWrite) { try device.write(data, at: extent.offset) }
                digest.add(.hashes(leaves), at: extent.offset / UInt64(DiskDigest.blockSize))
                tracker?.record(offset: extent.offset, leaves: hashes)
            }
        }
        if let changed = delta?.cover(extent.offset..<extent.offset + UInt64(extent.length)), changed > 0 {
            counters.add(compared: 0, changed: changed)
        }
        counters.wire.add(UInt64(wireBytes ?? extent.length), ordering: .relaxed)
        counters.add(data: UInt64(extent.length))
    }

    /// Decompresses, then verifies and writes like a data extent. The hashes are of
    /// the uncompressed blocks, so a corrupt or hostile stream is caught the same way.
    func write(_ extent: CompressedExtent, codec: Codec) throws {
        let length = extent.length
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        var ok = false
        counters.stages.measure(.cpu) {
            _ = extent.compressed.withUnsafeReadableBytes { input in
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { output in
                    ok = codec.decompress(input, into: UnsafeMutableRawBufferPointer(rebasing: output[0..<length])) != nil
                    return ok ? length : 0
                }
            }
        }
        guard ok else {
            throw ProtocolError(
                .verification, "\(codec.kind) extent at offset \(extent.offset) of disk \(description.index) does not decompress to \(length) bytes")
        }
        try write(
            DataExtent(disk: extent.disk, offset: extent.offset, hashes: extent.hashes, data: buffer),
            wireBytes: extent.compressed.readableBytes)
    }

    func zero(_ extent: ZeroExtent) throws {
        try journal?.void(extent.offset..<extent.offset + extent.length)
        if !knownZero {
            try counters.stages.measure(.targetWrite) {
                try device.writeZeros(at: extent.offset, length: extent.length, mayDiscard: true)
            }
        }
        digest.addZeros(offset: extent.offset, length: extent.length)
        tracker?.recordZeros(offset: extent.offset, length: extent.length)
        if let changed = delta?.cover(extent.offset..<extent.offset + extent.length), changed > 0 {
            counters.add(compared: 0, changed: changed)
        }
        counters.add(zero: extent.length)
    }

    /// A journaled segment the sender proved unchanged: its leaves must hash to the
    /// digest of what this receiver re-read from its target at the start of the
    /// session (which matched the journal). Nothing is written.
    func same(_ segment: SameSegment) throws {
        guard let journal, let tracker else {
            throw ProtocolError(.protocolViolation, "an unchanged segment was claimed but this target has no journal")
        }
        let index = segment.offset / UInt64(journal.segmentSize)
        let range = tracker.range(ofSegment: index)
        guard range.lowerBound == segment.offset, range.upperBound - range.lowerBound == UInt64(segment.length),
            let proven = offered.withLock({ $0[index] })
        else {
            throw ProtocolError(.protocolViolation, "segment at \(segment.offset) was not offered by this receiver")
        }
        try segment.leaves.withUnsafeReadableBytes { leaves in
            // `proven` is the digest of the leaves of the blocks read back from the target
            // in this session, equal to the journaled one: the sender's leaves must match it.
            guard ResumeJournal.segmentDigest(leaves) == proven else {
                throw ProtocolError(
                    .verification, "segment at \(segment.offset): the sender's blocks do not match what the target holds")
            }
            var hashes: [BlockHash] = []
            var i = 0
            while i + 32 <= leaves.count {
                if let leaf = BlockHash(raw: UnsafeRawBufferPointer(rebasing: leaves[i..<i + 32])) { hashes.append(leaf) }
                i += 32
            }
            digest.add(.hashes(hashes), at: segment.offset / UInt64(DiskDigest.blockSize))
        }
        durable.add(UInt64(segment.length), ordering: .relaxed)
        counters.add(data: UInt64(segment.length))
        // A sync pass compared it by hash and found it unchanged (a resume's proof is not a comparison).
        if delta != nil { counters.add(compared: UInt64(segment.length), changed: 0) }
    }

    /// Flushes the target and journals the segments completed since the last
    /// checkpoint; returns the bytes newly journaled. One at a time; a caller finding
    /// one running skips.
    @discardableResult
    func checkpoint() throws -> UInt64 {
        guard let journal, let tracker else { return 0 }
        let mine = checkpointing.withLock { busy -> Bool in
            defer { busy = true }
            return !busy
        }
        guard mine else { return 0 }
        defer { checkpointing.withLock { $0 = false } }
        let complete = tracker.takeComplete()
        guard !complete.isEmpty else { return 0 }
        try device.flush()
        try journal.append(complete)
        let bytes = complete.reduce(UInt64(0)) { $0 + UInt64(tracker.range(ofSegment: $1.0).count) }
        durable.add(bytes, ordering: .relaxed)
        return bytes
    }

    /// Commits the target if what was verified hashes to the sender's digest
    /// (`TargetCommit`: flush, compare, `whenVerified`, block 0, rename); returns the
    /// digest. Throws `VerificationError` on a mismatch, with nothing committed.
    func finish(expected: [UInt8], whenVerified: (DiskDigest) throws -> Void = { _ in }) throws -> DiskDigest {
        let ours = try digest.finalize()
        try commit.commit(digest: ours, expected: DiskDigest(bytes: expected, leaf: ours.leaf)) { try whenVerified(ours) }
        return ours
    }
}
