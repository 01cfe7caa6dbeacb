import FerryCopy
import FerryDisk
import FerryProtocol
import Foundation
import NIOCore
import Synchronization

/// Delta sync on the sender's side (docs/protocol.md, "Delta sync"): per disk, what was
/// compared and what differed (the pass's report), and the block hashes the receiver
/// sent for the segments whose digests differ, handed from the inbound loop to the worker
/// that asked for them.
final class DeltaSender: Sendable {
    struct Key: Hashable, Sendable {
        var disk: UInt32
        var offset: UInt64
    }
    private struct State {
        var arrived: [Key: BlockHashList] = [:]
        var waiting: [Key: CheckedContinuation<BlockHashList, any Error>] = [:]
        var closed = false
    }
    private let state = Mutex(State())
    /// Per disk: bytes compared (the segments the receiver hashed) and bytes that differed.
    private let tallies: Mutex<[(compared: UInt64, changed: UInt64)]>

    /// Per disk, the receiver's segment lists as they arrive (it hashes while we compare).
    private let feeds: [(lists: AsyncStream<SegmentList>, continuation: AsyncStream<SegmentList>.Continuation)]

    init(disks: Int) {
        tallies = Mutex(Array(repeating: (0, 0), count: disks))
        feeds = (0..<disks).map { _ in
            let (lists, continuation) = AsyncStream<SegmentList>.makeStream()
            return (lists, continuation)
        }
    }

    /// The inbound loop: a segment list of a delta disk (the last one ends its feed).
    func feed(_ list: SegmentList) {
        guard feeds.indices.contains(Int(list.disk)) else { return }
        feeds[Int(list.disk)].continuation.yield(list)
        if list.isFinal { feeds[Int(list.disk)].continuation.finish() }
    }

    func lists(disk: UInt32) -> AsyncStream<SegmentList> { feeds[Int(disk)].lists }

    /// Counts `compared` bytes of disk `disk` compared, `changed` of them different.
    func count(disk: UInt32, compared: UInt64, changed: UInt64 = 0) {
        tallies.withLock { t in
            guard t.indices.contains(Int(disk)) else { return }
            t[Int(disk)].compared += compared
            t[Int(disk)].changed += changed
        }
    }

    func tally(disk: UInt32) -> (compared: UInt64, changed: UInt64) {
        tallies.withLock { t in t.indices.contains(Int(disk)) ? t[Int(disk)] : (0, 0) }
    }

    /// The inbound loop: block hashes the state machine accepted as asked for.
    func deliver(_ hashes: BlockHashList) {
        let key = Key(disk: hashes.disk, offset: hashes.offset)
        let waiter = state.withLock { s -> CheckedContinuation<BlockHashList, any Error>? in
            if let w = s.waiting.removeValue(forKey: key) { return w }
            s.arrived[key] = hashes
            return nil
        }
        waiter?.resume(returning: hashes)
    }

    /// Waits for the block hashes of the segment at `offset` (asked for already).
    func hashes(disk: UInt32, offset: UInt64) async throws -> BlockHashList {
        let key = Key(disk: disk, offset: offset)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<BlockHashList, any Error>? = state.withLock { s in
                    if let hashes = s.arrived.removeValue(forKey: key) { return .success(hashes) }
                    if s.closed { return .failure(CancellationError()) }
                    s.waiting[key] = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            close()
        }
    }

    /// The session ended: nobody waits any longer.
    func close() {
        let waiters = state.withLock { s in
            s.closed = true
            defer { s.waiting.removeAll() }
            return Array(s.waiting.values)
        }
        for w in waiters { w.resume(throwing: CancellationError()) }
        for f in feeds { f.continuation.finish() }
    }

    /// The pass's line: compared, changed, sent.
    func report(disk: UInt32, name: String, sent: UInt64) -> String {
        let (c, d) = tally(disk: disk)
        let share = c > 0 ? String(format: " (%.2f %%)", Double(d) * 100 / Double(c)) : ""
        return "ferry send: \(name): delta pass: compared \(ByteCount.format(c)) with the receiver's copy, "
            + "changed \(ByteCount.format(d))\(share), sent \(ByteCount.format(sent)) of data"
    }
}

extension SourceStreamer {
    /// What the source's segment is against the receiver's segment digest: the proof
    /// that it is unchanged (`same`), or its leaves, for the fine pass.
    enum SegmentComparison {
        case same(SameSegment)
        case differs(range: Range<UInt64>, leaves: [BlockHash])
    }

    func compareSegment(_ segment: UInt64, size segmentSize: UInt64, expected: [UInt8]) throws -> SegmentComparison? {
        let start = segment * segmentSize
        guard start < source.size else { return nil }
        let end = min(source.size, start + segmentSize)
        let leaves = try source.leaves(of: start..<end, leaf: digest.leaf)
        var wire = allocator.buffer(capacity: leaves.count * WireLimits.hashSize)
        for leaf in leaves { leaf.withRawBytes { _ = wire.writeBytes($0) } }
        guard wire.withUnsafeReadableBytes({ ResumeJournal.segmentDigest($0) }) == expected else {
            return .differs(range: start..<end, leaves: leaves)
        }
        digest.add(.hashes(leaves), at: start / UInt64(DiskDigest.blockSize))
        return .same(SameSegment(disk: index, offset: start, length: Int(end - start), leaves: wire))
    }

    /// The fine pass over one segment: runs of blocks whose leaves equal the receiver's
    /// become `sameBlocks` (their leaves feed the digest), the others are read again and
    /// sent like any data (zero runs as zero extents). Returns the messages and the bytes
    /// that differed. Blocking: run on the thread pool.
    func finePass(_ range: Range<UInt64>, ours: [BlockHash], theirs: BlockHashList) throws -> (messages: [Message], changed: UInt64) {
        let block = UInt64(DiskDigest.blockSize)
        let firstBlock = range.lowerBound / block
        var messages: [Message] = []
        var changed: UInt64 = 0
        var i = 0
        while i < ours.count {
            let equal = matches(ours[i], theirs.leaves, at: i)
            var j = i + 1
            while j < ours.count, matches(ours[j], theirs.leaves, at: j) == equal { j += 1 }
            let start = range.lowerBound + UInt64(i) * block
            let end = min(range.upperBound, range.lowerBound + UInt64(j) * block)
            if equal {
                digest.add(.hashes(Array(ours[i..<j])), at: firstBlock + UInt64(i))
                messages.append(.sameBlocks(SameBlocks(disk: index, offset: start, length: Int(end - start))))
            } else {
                changed += end - start
                messages += try read(CopyRequest(at: start, length: end - start, kind: .data))
            }
            i = j
        }
        return (messages, changed)
    }

    private func matches(_ leaf: BlockHash, _ theirs: ByteBuffer, at index: Int) -> Bool {
        guard let bytes = theirs.getBytes(at: theirs.readerIndex + index * WireLimits.hashSize, length: WireLimits.hashSize) else {
            return false
        }
        return leaf.withRawBytes { Array($0) } == bytes
    }
}
