public import NIOCore

/// Bytes of the disk, with the SHA-256 of each 64 KiB block they cover. The block
/// hashes are the leaves of the disk digest (blkhash), so each side hashes every
/// byte once: the receiver checks each block before writing it and feeds the same
/// leaves to its digest.
///
/// ```
///  0      4        12       16
///  | disk | offset | length | hashes (32 × ceil(length / 65536)) | data (length) |
///    u32    u64      u32
/// ```
/// `offset` is a multiple of 65536; `length` is 1…4 MiB and a multiple of 65536
/// unless the extent ends the disk.
public struct DataExtent: Sendable, Equatable {
    public var disk: UInt32
    public var offset: UInt64
    /// 32 bytes per block, in block order.
    public var hashes: ByteBuffer
    public var data: ByteBuffer

    public init(disk: UInt32, offset: UInt64, hashes: ByteBuffer, data: ByteBuffer) {
        self.disk = disk
        self.offset = offset
        self.hashes = hashes
        self.data = data
    }

    public var length: Int { data.readableBytes }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        offset = try buffer.read(UInt64.self, "offset")
        let length = Int(try buffer.read(UInt32.self, "length"))
        try ExtentRules.check(offset: offset, length: length)
        hashes = try buffer.readSlice(ExtentRules.hashBytes(forLength: length), "hashes")
        data = try buffer.readSlice(length, "data")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(UInt32(truncatingIfNeeded: data.readableBytes), endianness: .big)
        buffer.writeImmutableBuffer(hashes)
        buffer.writeImmutableBuffer(data)
    }
}

/// A run of the disk that reads as zeros. It never crosses the wire as bytes,
/// however long it is; its digest leaves are the constant zero-block hash.
///
/// ```
///  0      4        12
///  | disk | offset | length |
///    u32    u64      u64
/// ```
public struct ZeroExtent: Sendable, Equatable {
    public var disk: UInt32
    public var offset: UInt64
    public var length: UInt64

    public init(disk: UInt32, offset: UInt64, length: UInt64) {
        self.disk = disk
        self.offset = offset
        self.length = length
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        offset = try buffer.read(UInt64.self, "offset")
        length = try buffer.read(UInt64.self, "length")
        guard offset % UInt64(WireLimits.blockSize) == 0, length > 0 else {
            throw ProtocolError(.outOfRange, "zero run at \(offset)+\(length) is empty or not on a 64 KiB boundary")
        }
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(length, endianness: .big)
    }
}

/// A data extent whose bytes are compressed with one codec. The hashes are of the
/// uncompressed blocks, so a decompressor bug is caught like a transmission error.
///
/// ```
///  0      4        12       16      17                21
///  | disk | offset | length | codec | compressed length | hashes | compressed data |
///    u32    u64      u32      u8      u32
/// ```
public struct CompressedExtent: Sendable, Equatable {
    public enum Codec: UInt8, Sendable, CaseIterable {
        case zstd = 1, lz4 = 2, gzip = 3
    }

    public var disk: UInt32
    public var offset: UInt64
    /// Uncompressed length.
    public var length: Int
    public var codec: Codec
    public var hashes: ByteBuffer
    public var compressed: ByteBuffer

    public init(disk: UInt32, offset: UInt64, length: Int, codec: Codec, hashes: ByteBuffer, compressed: ByteBuffer) {
        self.disk = disk
        self.offset = offset
        self.length = length
        self.codec = codec
        self.hashes = hashes
        self.compressed = compressed
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        offset = try buffer.read(UInt64.self, "offset")
        length = Int(try buffer.read(UInt32.self, "length"))
        try ExtentRules.check(offset: offset, length: length)
        guard let codec = Codec(rawValue: try buffer.read(UInt8.self, "codec")) else {
            throw ProtocolError(.protocolViolation, "unknown compression codec")
        }
        self.codec = codec
        let compressedLength = Int(try buffer.read(UInt32.self, "compressedLength"))
        guard compressedLength > 0, compressedLength <= WireLimits.maxExtentData + 65536 else {
            throw ProtocolError(.protocolViolation, "compressed length \(compressedLength) is out of bounds")
        }
        hashes = try buffer.readSlice(ExtentRules.hashBytes(forLength: length), "hashes")
        compressed = try buffer.readSlice(compressedLength, "compressed")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(UInt32(truncatingIfNeeded: length), endianness: .big)
        buffer.writeInteger(codec.rawValue)
        buffer.writeInteger(UInt32(truncatingIfNeeded: compressed.readableBytes), endianness: .big)
        buffer.writeImmutableBuffer(hashes)
        buffer.writeImmutableBuffer(compressed)
    }
}

/// Shape rules shared by data and compressed extents (the disk-relative rules live
/// in the receiver state machine, which knows the disk size).
public enum ExtentRules {
    public static func check(offset: UInt64, length: Int) throws(ProtocolError) {
        guard length > 0, length <= WireLimits.maxExtentData else {
            throw ProtocolError(.outOfRange, "extent length \(length) is not within 1…\(WireLimits.maxExtentData)")
        }
        guard offset % UInt64(WireLimits.blockSize) == 0 else {
            throw ProtocolError(.outOfRange, "extent offset \(offset) is not on a 64 KiB block boundary")
        }
    }

    public static func blockCount(forLength length: Int) -> Int {
        (length + WireLimits.blockSize - 1) / WireLimits.blockSize
    }

    public static func hashBytes(forLength length: Int) -> Int {
        blockCount(forLength: length) * WireLimits.hashSize
    }
}
