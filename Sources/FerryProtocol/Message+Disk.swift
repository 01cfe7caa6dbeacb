import NIOCore

/// The sender describes disk `index` of `count` before sending any of its extents.
///
/// ```
///  0       4       8      16            20
///  | index | count | size | sector size | name (u16 length + UTF-8) |
///    u32     u32     u64    u32
/// ```
public struct DiskDescription: Sendable, Equatable {
    public var index: UInt32
    public var count: UInt32
    public var size: UInt64
    public var sectorSize: UInt32
    public var name: String

    public init(index: UInt32, count: UInt32, size: UInt64, sectorSize: UInt32, name: String) {
        self.index = index
        self.count = count
        self.size = size
        self.sectorSize = sectorSize
        self.name = name
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        index = try buffer.read(UInt32.self, "index")
        count = try buffer.read(UInt32.self, "count")
        size = try buffer.read(UInt64.self, "size")
        sectorSize = try buffer.read(UInt32.self, "sectorSize")
        name = try buffer.readWireString("name")
        guard count >= 1, count <= WireLimits.maxDisks, index < count else {
            throw ProtocolError(.protocolViolation, "disk \(index) of \(count) is not a valid disk number")
        }
        // Sizes past 2^62 would overflow offset arithmetic elsewhere; no real disk is that large.
        guard size <= 1 << 62 else {
            throw ProtocolError(.outOfRange, "disk size \(size) is beyond any real disk")
        }
        guard sectorSize == 512 || sectorSize == 4096 else {
            throw ProtocolError(.protocolViolation, "sector size \(sectorSize) is neither 512 nor 4096")
        }
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(index, endianness: .big)
        buffer.writeInteger(count, endianness: .big)
        buffer.writeInteger(size, endianness: .big)
        buffer.writeInteger(sectorSize, endianness: .big)
        buffer.writeWireString(name)
    }
}

/// The receiver has opened the target for disk `index` and is ready for its extents.
///
/// ```
///  0       4
///  | index | flags |
///    u32     u32     bit 0: the target reads as zeros already; bit 1: segment list follows (resume)
/// ```
public struct DiskReady: Sendable, Equatable {
    public var index: UInt32
    public var flags: UInt32
    /// With the `keyedLeaves` flag: the 32-byte key of this disk's keyed XXH3 leaves.
    public var leafKey: [UInt8]?

    public static let targetIsZero: UInt32 = 1 << 0
    /// A `SegmentList` follows: the receiver holds journaled segments of this disk.
    public static let resume: UInt32 = 1 << 1

    public init(index: UInt32, flags: UInt32 = 0, leafKey: [UInt8]? = nil) {
        self.index = index
        self.flags = leafKey == nil ? flags & ~Self.keyedLeaves : flags | Self.keyedLeaves
        self.leafKey = leafKey
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        index = try buffer.read(UInt32.self, "index")
        flags = try buffer.read(UInt32.self, "flags")
        if flags & Self.keyedLeaves != 0 {
            guard let key = buffer.readBytes(length: Self.leafKeySize) else {
                throw ProtocolError(.protocolViolation, "message ends inside field 'leaf key'")
            }
            leafKey = key
        }
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(index, endianness: .big)
        buffer.writeInteger(flags, endianness: .big)
        if let leafKey { buffer.writeBytes(leafKey) }
    }
}
