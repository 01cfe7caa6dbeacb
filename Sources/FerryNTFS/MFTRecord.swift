import FerryBinary

/// An MFT record (FILE_RECORD_SEGMENT_HEADER; formats §6.3), fix-ups applied.
///
/// ```
///  0 "FILE"  4 USA offset  6 USA count  8 LSN  16 sequence u16  18 link count
///  20 first attribute offset u16  22 flags u16 (0x1 in use, 0x2 directory)
///  24 bytes used u32  28 bytes allocated u32  32 base record reference u64  40 next attribute id
/// ```
public struct MFTRecord: Sendable, Equatable {
    /// At most this many attributes per record (a 4 KiB record fits ~170 of the smallest).
    public static let maxAttributes = 512

    public var number: UInt64
    public var sequence: UInt16
    public var flags: UInt16
    public var baseReference: UInt64
    public var attributes: [Attribute]

    public var inUse: Bool { flags & 0x1 != 0 }
    public var isDirectory: Bool { flags & 0x2 != 0 }
    /// The base record number, for extension records (0 for base records).
    public var baseRecordNumber: UInt64 { baseReference & 0xFFFF_FFFF_FFFF }

    public init(parsing raw: [UInt8], number: UInt64, offset: UInt64) throws {
        guard raw.starts(with: Array("FILE".utf8)) else {
            let what = raw.starts(with: Array("BAAD".utf8)) ? "record marked BAAD (torn)" : "no \"FILE\" signature"
            throw FormatError(.badMagic, structure: "MFT record \(number)", field: "signature", offset: offset, what)
        }
        var bytes = raw
        try FixUp.apply(&bytes, structure: "MFT record \(number)", offset: offset)
        var r = ByteReader(bytes, structure: "MFT record \(number)", baseOffset: offset)
        try r.seek(to: 16)
        sequence = try r.readLittleEndian(UInt16.self, "sequence number")
        try r.skip(2)
        let firstAttribute = Int(try r.readLittleEndian(UInt16.self, "first attribute offset"))
        flags = try r.readLittleEndian(UInt16.self, "flags")
        let used = Int(try r.readLittleEndian(UInt32.self, "bytes used"))
        try r.skip(4)
        baseReference = try r.readLittleEndian(UInt64.self, "base record reference")
        self.number = number
        guard used <= bytes.count, firstAttribute >= 24, firstAttribute < used else {
            throw FormatError(.outOfRange, structure: "MFT record \(number)", field: "bytes used", offset: offset + 24,
                "first attribute at \(firstAttribute), \(used) bytes used, in a \(bytes.count)-byte record")
        }
        let usedBytes = Array(bytes[0..<used])
        attributes = []
        var position = firstAttribute
        while position + 4 <= used {
            guard let (attribute, length) = try Attribute.parse(usedBytes, at: position, recordOffset: offset) else { break }
            attributes.append(attribute)
            guard attributes.count <= Self.maxAttributes else {
                throw FormatError(.limitExceeded, structure: "MFT record \(number)", "more than \(Self.maxAttributes) attributes")
            }
            position += length  // length ≥ 16, so the loop always advances
        }
    }

    public func attributes(_ type: AttributeType, named name: String = "") -> [Attribute] {
        attributes.filter { $0.type == type.rawValue && $0.name == name }
    }
}
