import FerryCopy
import FerryDisk
import FerryProtocol
import NIOCore
import Synchronization

/// One target being received: checks every block against its hash before writing,
/// feeds the verified leaves to the digest, and finishes with flush + commit.
///
/// Called from thread-pool threads, several extents at a time (positional writes
/// at distinct offsets, which `BlockDevice` allows). Ranges were approved by the
/// `ReceiverStateMachine` already; the device re-checks them on every write.
final class ReceiverDisk: Sendable {
    let description: DiskDescription
    let target: LocalTarget
    let digest: DigestBuilder
    let counters: CopyCounters
    /// The target read as zeros before we started (a new sparse file).
    let knownZero: Bool
    /// A block device is written in place: hold its first block back until everything
    /// else is durable, so a failed transfer cannot leave a bootable-looking disk.
    let holdFirstBlock: Bool
    private let held = Mutex<[UInt8]?>(nil)
    /// Resume bookkeeping (nil for targets that cannot resume: stdout, null:).
    let journal: ResumeJournal?
    let tracker: SegmentTracker?
    /// Journaled segments just re-read from the target and found intact: the only ones
    /// offered to the sender, and the only ones `same` accepts (see `proveJournaled`).
    let offered = Mutex<[UInt64: [UInt8]]>([:])
    /// Bytes of segments flushed and journaled (what `Ack.durable` reports).
    let durable = Atomic<UInt64>(0)
    private let checkpointing = Mutex(false)

    init(
        description: DiskDescription, target: LocalTarget, counters: CopyCounters, journal: ResumeJournal?, leaf: LeafHash
    ) throws {
        self.description = description
        self.target = target
        self.counters = counters
        self.journal = journal
        digest = DigestBuilder(size: description.size, leaf: leaf)
        knownZero = target.knownZero
        let hold = target.writesInPlace && target.device.isRandomAccess && description.size > 0
        holdFirstBlock = hold
        tracker = journal.map {
            SegmentTracker(segmentSize: $0.segmentSize, diskSize: description.size, excluded: hold ? [0] : [], leaf: leaf)
        }
        if holdFirstBlock && !knownZero {
            let first = min(UInt64(DiskDigest.blockSize), description.size)
            try target.device.writeZeros(at: 0, length: first, mayDiscard: false)
            try target.device.flush()
        }
    }

    var device: any BlockDevice { target.device }

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
                try stages.measure(.targetWrite) { try store(data, at: extent.offset) }
                digest.add(.hashes(leaves), at: extent.offset / UInt64(DiskDigest.blockSize))
                tracker?.record(offset: extent.offset, leaves: hashes)
            }
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

    /// Writes bytes already verified, holding back block 0 of an in-place target.
    private func store(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var data = data
        var offset = offset
        if holdFirstBlock && offset == 0 {
            let n = min(data.count, DiskDigest.blockSize)
            let first = Array(UnsafeRawBufferPointer(rebasing: data[0..<n]))
            held.withLock { $0 = first }
            data = UnsafeRawBufferPointer(rebasing: data[n...])
            offset = UInt64(n)
            guard !data.isEmpty else { return }
        }
        try device.write(data, at: offset)
    }

    func zero(_ extent: ZeroExtent) throws {
        try journal?.void(extent.offset..<extent.offset + extent.length)
        if !knownZero {
            var offset = extent.offset
            var length = extent.length
            if holdFirstBlock && offset == 0 {
                // Block 0 was zeroed up front; the held copy stays nil (it reads as zeros).
                let n = min(length, UInt64(DiskDigest.blockSize))
                offset += n
                length -= n
            }
            if length > 0 {
                try counters.stages.measure(.targetWrite) { try device.writeZeros(at: offset, length: length, mayDiscard: true) }
            }
        }
        digest.addZeros(offset: extent.offset, length: extent.length)
        tracker?.recordZeros(offset: extent.offset, length: extent.length)
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

    /// Flushes, writes the held first block, flushes again, and returns the digest of
    /// what was verified. The caller commits only if it matches the sender's.
    func finish() throws -> DiskDigest {
        try device.flush()
        if let first = held.withLock({ $0 }) {
            try first.withUnsafeBytes { try device.write($0, at: 0) }
            try device.flush()
        }
        return try digest.finalize()
    }
}
