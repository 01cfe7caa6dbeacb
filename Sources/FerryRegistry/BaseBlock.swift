public import FerryBinary

/// The regf base block: the first 4096 bytes of a hive file (Suhanov, "Windows registry
/// file format specification", §Base block; formats §7.2).
///
/// ```
///  0 "regf"            4 primary sequence     8 secondary sequence   12 FILETIME
///  20 major (1)        24 minor (3…6)         28 file type (0)       32 format (1)
///  36 root cell offset 40 hive bins data size 44 clustering factor   48 file name (64)
///  508 checksum: XOR of the 127 u32le at 0…507 (0 → 1, 0xFFFFFFFF → 0xFFFFFFFE)
/// ```
/// Only the first 512 bytes matter; the rest (Win10 RmId/TmId…) is kept as is by `write`.
public struct BaseBlock: Sendable, Equatable {
    public static let size = 4096
    public static let signature: [UInt8] = Array("regf".utf8)

    public var primarySequence: UInt32
    public var secondarySequence: UInt32
    public var lastWritten: UInt64
    public var majorVersion: UInt32
    public var minorVersion: UInt32
    public var fileType: UInt32
    public var fileFormat: UInt32
    public var rootCellOffset: CellIndex
    public var hiveBinsDataSize: UInt32
    public var clusteringFactor: UInt32
    public var checksum: UInt32
    /// Bytes 48…4095 other than the checksum, carried through `write(to:)` unchanged.
    public var tail: [UInt8]

    public init(parsing bytes: [UInt8]) throws {
        guard bytes.count >= Self.size else {
            throw FormatError(.truncated, structure: "regf base block", "needs 4096 bytes, got \(bytes.count)")
        }
        var r = ByteReader(Array(bytes.prefix(Self.size)), structure: "regf base block")
        guard try r.readBytes(4, field: "signature") == Self.signature else {
            throw FormatError(.badMagic, structure: "regf base block", field: "signature", offset: 0, "not a registry hive (no \"regf\")")
        }
        primarySequence = try r.readLittleEndian(UInt32.self, "primary sequence number")
        secondarySequence = try r.readLittleEndian(UInt32.self, "secondary sequence number")
        lastWritten = try r.readLittleEndian(UInt64.self, "last written timestamp")
        majorVersion = try r.readLittleEndian(UInt32.self, "major version")
        minorVersion = try r.readLittleEndian(UInt32.self, "minor version")
        fileType = try r.readLittleEndian(UInt32.self, "file type")
        fileFormat = try r.readLittleEndian(UInt32.self, "file format")
        rootCellOffset = CellIndex(try r.readLittleEndian(UInt32.self, "root cell offset"))
        hiveBinsDataSize = try r.readLittleEndian(UInt32.self, "hive bins data size")
        clusteringFactor = try r.readLittleEndian(UInt32.self, "clustering factor")
        tail = Array(bytes[48..<Self.size])
        checksum = try r.peekLittleEndian(UInt32.self, at: 508, "checksum")
        guard majorVersion == 1 else {
            throw FormatError(
                .unsupportedVersion, structure: "regf base block", field: "major version", offset: 20,
                "major version \(majorVersion) is not 1")
        }
        guard hiveBinsDataSize % 4096 == 0 else {
            throw FormatError(
                .inconsistent, structure: "regf base block", field: "hive bins data size", offset: 40,
                "\(hiveBinsDataSize) is not a multiple of 4096")
        }
    }

    public func write(to writer: inout ByteWriter) {
        var w = ByteWriter(capacity: Self.size)
        w.write(bytes: Self.signature)
        for v in [primarySequence, secondarySequence] { w.writeLittleEndian(v) }
        w.writeLittleEndian(lastWritten)
        for v in [majorVersion, minorVersion, fileType, fileFormat, rootCellOffset.value, hiveBinsDataSize, clusteringFactor] {
            w.writeLittleEndian(v)
        }
        var rest = tail
        rest += [UInt8](repeating: 0, count: max(0, Self.size - 48 - rest.count))
        w.write(bytes: rest.prefix(Self.size - 48))
        let sum = Self.computeChecksum(w.bytes)
        w.setLittleEndian(sum, at: 508)
        writer.write(bytes: w.bytes)
    }

    /// XOR of the first 127 little-endian u32 words, with the two reserved results remapped.
    public static func computeChecksum(_ bytes: [UInt8]) -> UInt32 {
        var sum: UInt32 = 0
        for i in 0..<127 { sum ^= bytes.littleEndian(UInt32.self, at: i * 4) ?? 0 }
        if sum == 0xFFFF_FFFF { return 0xFFFF_FFFE }
        if sum == 0 { return 1 }
        return sum
    }

    /// The checksum stored matches the header bytes it was read from.
    public func checksumValid(in bytes: [UInt8]) -> Bool { Self.computeChecksum(bytes) == checksum }

    /// A write was started and not finished: the .LOG files hold newer data.
    public var sequenceMismatch: Bool { primarySequence != secondarySequence }
}
