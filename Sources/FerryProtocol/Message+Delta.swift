public import NIOCore

// Delta sync (docs/protocol.md, "Delta sync"): the hash exchange of messages 0x52–0x54.
//
// The coarse pass reuses resume's messages: a receiver whose target already holds a copy
// says so in `ready` (flag `delta`), lists the SHA-256 segment digests of its target as it
// reads it now in `segments` (0x50), and the sender answers an unchanged segment with
// `same` (0x51). The fine pass is these three messages, for a segment whose digests differ:
//
//   sender ── blockRequest (segment) ──▶ receiver   re-reads that segment of its target
//   sender ◀── blockHashes (its leaves) ── receiver   keeps them until the segment is covered
//   sender ── data / zero (blocks that differ), sameBlocks (runs that match) ──▶ receiver

extension DiskReady {
    /// The target already holds a copy of this disk (a warm pass, or an older copy): a
    /// `SegmentList` of the target's segment digests follows, and the fine pass may be used.
    public static let delta: UInt32 = 1 << 2
    /// This disk's block hashes are XXH3-128 keyed by the 32 bytes that follow the flags
    /// (`leafKey`), drawn by the receiver; only when both hellos carry `keyedXXH3`.
    public static let keyedLeaves: UInt32 = 1 << 3
    public static let leafKeySize = 32
}

/// Sender → receiver (0x52): send the block hashes of segment `segment` of your target.
/// Only for a segment the receiver listed in a delta `segments` message, once each.
///
/// ```
///  0      4
///  | disk | segment |
///    u32    u64
/// ```
public struct BlockRequest: Sendable, Equatable {
    public var disk: UInt32
    public var segment: UInt64

    public init(disk: UInt32, segment: UInt64) {
        self.disk = disk
        self.segment = segment
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        segment = try buffer.read(UInt64.self, "segment")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(segment, endianness: .big)
    }
}

/// Receiver → sender (0x53): the leaf (SHA-256 of each 64 KiB block) of every block of one
/// requested segment, as the receiver's target holds it now. The range must be exactly the
/// requested segment (the sender refuses anything else, and anything unasked for).
///
/// ```
///  0      4        12
///  | disk | offset | length | leaves (32 × ceil(length / 65536)) |
///    u32    u64      u32
/// ```
public struct BlockHashList: Sendable, Equatable {
    public var disk: UInt32
    public var offset: UInt64
    public var length: Int
    public var leaves: ByteBuffer

    public init(disk: UInt32, offset: UInt64, length: Int, leaves: ByteBuffer) {
        self.disk = disk
        self.offset = offset
        self.length = length
        self.leaves = leaves
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        offset = try buffer.read(UInt64.self, "offset")
        length = Int(try buffer.read(UInt32.self, "length"))
        try DeltaRules.check(offset: offset, length: length, what: "block hashes")
        leaves = try buffer.readSlice(ExtentRules.hashBytes(forLength: length), "leaves")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(UInt32(truncatingIfNeeded: length), endianness: .big)
        buffer.writeImmutableBuffer(leaves)
    }
}

/// Sender → receiver (0x54): these blocks of a segment whose block hashes the receiver sent
/// are the same in the source. Nothing is written; the receiver feeds the leaves it sent to
/// its disk digest. The range must lie inside one such segment.
///
/// ```
///  0      4        12
///  | disk | offset | length |
///    u32    u64      u32
/// ```
public struct SameBlocks: Sendable, Equatable {
    public var disk: UInt32
    public var offset: UInt64
    public var length: Int

    public init(disk: UInt32, offset: UInt64, length: Int) {
        self.disk = disk
        self.offset = offset
        self.length = length
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        offset = try buffer.read(UInt64.self, "offset")
        length = Int(try buffer.read(UInt32.self, "length"))
        try DeltaRules.check(offset: offset, length: length, what: "unchanged blocks")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(UInt32(truncatingIfNeeded: length), endianness: .big)
    }
}

/// The bounds of the fine pass, enforced by both sides.
public enum DeltaRules {
    /// Block-hash requests a receiver answers and has not yet seen covered, per session:
    /// what it holds in memory is this many leaf tables (2 KiB per 4 MiB segment).
    /// The sender keeps at most `workers` outstanding; more is a flood and refused.
    public static let maxOutstandingRequests = 256

    static func check(offset: UInt64, length: Int, what: String) throws(ProtocolError) {
        guard length > 0, length <= SegmentList.maxSegmentSize, offset % UInt64(WireLimits.blockSize) == 0 else {
            throw ProtocolError(.outOfRange, "\(what) \(offset)+\(length) is misaligned or longer than a segment")
        }
        guard !offset.addingReportingOverflow(UInt64(length)).overflow else {
            throw ProtocolError(.outOfRange, "\(what) \(offset)+\(length) overflows")
        }
    }
}
