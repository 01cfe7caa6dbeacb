public import NIOCore

/// Receiver → sender, right after `ready` with the resume flag: segments of the
/// disk that an interrupted earlier transfer wrote, flushed and journaled, and that the
/// receiver has just re-read from its target and found intact, each with its segment
/// digest (SHA-256 over the segment's 32-byte block leaves). Sent in batches; the last
/// has `final` set.
///
/// ```
///  0      4              8       9       13
///  | disk | segment size | final | count | count × (index u64 | digest 32 bytes) |
///    u32    u32            u8      u32
/// ```
public struct SegmentList: Sendable, Equatable {
    public static let maxEntries = 8192
    /// Segment sizes are whole blocks, at most this many bytes.
    public static let maxSegmentSize = 64 << 20

    public struct Entry: Sendable, Equatable {
        public var index: UInt64
        public var digest: [UInt8]
        public init(index: UInt64, digest: [UInt8]) {
            self.index = index
            self.digest = digest
        }
    }

    public var disk: UInt32
    public var segmentSize: UInt32
    public var isFinal: Bool
    public var entries: [Entry]

    public init(disk: UInt32, segmentSize: UInt32, isFinal: Bool, entries: [Entry]) {
        self.disk = disk
        self.segmentSize = segmentSize
        self.isFinal = isFinal
        self.entries = entries
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        segmentSize = try buffer.read(UInt32.self, "segmentSize")
        guard segmentSize > 0, segmentSize % UInt32(WireLimits.blockSize) == 0, segmentSize <= Self.maxSegmentSize else {
            throw ProtocolError(.protocolViolation, "segment size \(segmentSize) is not a whole number of blocks up to 64 MiB")
        }
        isFinal = try buffer.read(UInt8.self, "final") != 0
        let count = Int(try buffer.read(UInt32.self, "count"))
        guard count <= Self.maxEntries else {
            throw ProtocolError(.protocolViolation, "\(count) segments in one list, over the \(Self.maxEntries) limit")
        }
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let index = try buffer.read(UInt64.self, "index")
            guard let digest = buffer.readBytes(length: WireLimits.hashSize) else {
                throw ProtocolError(.protocolViolation, "message ends inside field 'digest'")
            }
            entries.append(Entry(index: index, digest: digest))
        }
        self.entries = entries
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(segmentSize, endianness: .big)
        buffer.writeInteger(UInt8(isFinal ? 1 : 0))
        buffer.writeInteger(UInt32(entries.count), endianness: .big)
        for e in entries {
            buffer.writeInteger(e.index, endianness: .big)
            buffer.writeBytes(e.digest.prefix(WireLimits.hashSize))
        }
    }
}

/// Sender → receiver: this journaled segment is unchanged in the source. The leaves
/// are the sender's, read from the source just now; the receiver accepts them only if
/// they hash to the segment digest it read back from its target (and journaled), then
/// feeds them to its disk digest.
///
/// ```
///  0      4        12
///  | disk | offset | length | leaves (32 × ceil(length / 65536)) |
///    u32    u64      u32
/// ```
public struct SameSegment: Sendable, Equatable {
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
        guard length > 0, length <= SegmentList.maxSegmentSize, offset % UInt64(WireLimits.blockSize) == 0 else {
            throw ProtocolError(.outOfRange, "unchanged segment \(offset)+\(length) is misaligned or too long")
        }
        leaves = try buffer.readSlice(ExtentRules.hashBytes(forLength: length), "leaves")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(UInt32(truncatingIfNeeded: length), endianness: .big)
        buffer.writeImmutableBuffer(leaves)
    }
}
