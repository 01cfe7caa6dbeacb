public import FerryBinary

/// The GPT header (UEFI spec §5.3.2, "GPT Header"), at LBA 1 and, as a backup, at the
/// last LBA of the disk.
///
/// ```
///  0 "EFI PART"        8 revision u32     12 header size u32   16 header CRC32
///  24 my LBA u64       32 alternate LBA   40 first usable      48 last usable
///  56 disk GUID (16)   72 entries LBA     80 entry count u32   84 entry size u32
///  88 entry array CRC32
/// ```
/// The CRC covers `headerSize` bytes (92 usually, nbdkit writes 96) with the CRC field zeroed.
public struct GPTHeader: Sendable, Equatable {
    public static let signature: [UInt8] = Array("EFI PART".utf8)
    /// Entry arrays beyond this are refused: 128 is the norm, nobody needs thousands.
    public static let maxEntries: UInt32 = 4096
    public static let maxEntrySize: UInt32 = 4096

    public var revision: UInt32
    public var headerSize: UInt32
    public var headerCRC32: UInt32
    public var myLBA: UInt64
    public var alternateLBA: UInt64
    public var firstUsableLBA: UInt64
    public var lastUsableLBA: UInt64
    public var diskGUID: GUID
    public var entriesLBA: UInt64
    public var entryCount: UInt32
    public var entrySize: UInt32
    public var entryArrayCRC32: UInt32
    /// True when `headerCRC32` matches the bytes it was parsed from.
    public var headerCRCValid: Bool

    /// Parses one logical sector holding a header. Throws on a bad signature or sizes;
    /// a wrong CRC is reported in `headerCRCValid` so callers can fall back to the backup.
    public init(parsing sector: [UInt8], offset: UInt64) throws {
        var reader = ByteReader(sector, structure: "GPT header", baseOffset: offset)
        guard try reader.readBytes(8, field: "signature") == Self.signature else {
            throw FormatError(.badMagic, structure: "GPT header", field: "signature", offset: offset, "no \"EFI PART\"")
        }
        revision = try reader.readLittleEndian(UInt32.self, "revision")
        headerSize = try reader.readLittleEndian(UInt32.self, "header size")
        headerCRC32 = try reader.readLittleEndian(UInt32.self, "header CRC32")
        try reader.skip(4)
        myLBA = try reader.readLittleEndian(UInt64.self, "my LBA")
        alternateLBA = try reader.readLittleEndian(UInt64.self, "alternate LBA")
        firstUsableLBA = try reader.readLittleEndian(UInt64.self, "first usable LBA")
        lastUsableLBA = try reader.readLittleEndian(UInt64.self, "last usable LBA")
        diskGUID = try GUID(bytes: reader.readBytes(16, field: "disk GUID"))
        entriesLBA = try reader.readLittleEndian(UInt64.self, "partition entry LBA")
        entryCount = try reader.readLittleEndian(UInt32.self, "number of partition entries")
        entrySize = try reader.readLittleEndian(UInt32.self, "size of partition entry")
        entryArrayCRC32 = try reader.readLittleEndian(UInt32.self, "partition entry array CRC32")
        guard headerSize >= 92, Int(headerSize) <= sector.count else {
            throw FormatError(
                .outOfRange, structure: "GPT header", field: "header size", offset: offset + 12,
                "\(headerSize) is not within 92…\(sector.count)")
        }
        guard entrySize >= 128, entrySize <= Self.maxEntrySize, entrySize % 8 == 0 else {
            throw FormatError(
                .outOfRange, structure: "GPT header", field: "size of partition entry", offset: offset + 84,
                "\(entrySize) is not a multiple of 8 within 128…\(Self.maxEntrySize)")
        }
        guard entryCount <= Self.maxEntries else {
            throw FormatError(
                .limitExceeded, structure: "GPT header", field: "number of partition entries", offset: offset + 80,
                "\(entryCount) exceeds the limit of \(Self.maxEntries)")
        }
        var copy = Array(sector[0..<Int(headerSize)])
        for i in 16..<20 { copy[i] = 0 }
        headerCRCValid = CRC32.checksum(copy) == headerCRC32
    }

    /// Bytes of the entry array; bounded by the limits checked at parse time.
    public var entryArrayBytes: Int { Int(entryCount) * Int(entrySize) }
}

/// One GPT partition entry (UEFI spec §5.3.3, Table 5-6).
///
/// ```
///  0 type GUID   16 unique GUID   32 first LBA u64   40 last LBA u64 (inclusive)
///  48 attributes u64   56 name (36 UTF-16LE code units)
/// ```
public struct GPTEntry: Sendable, Equatable {
    public var typeGUID: GUID
    public var uniqueGUID: GUID
    public var firstLBA: UInt64
    public var lastLBA: UInt64
    public var attributes: UInt64
    public var name: String

    public init(parsing reader: inout ByteReader) throws {
        typeGUID = try GUID(bytes: reader.readBytes(16, field: "type GUID"))
        uniqueGUID = try GUID(bytes: reader.readBytes(16, field: "unique GUID"))
        firstLBA = try reader.readLittleEndian(UInt64.self, "first LBA")
        lastLBA = try reader.readLittleEndian(UInt64.self, "last LBA")
        attributes = try reader.readLittleEndian(UInt64.self, "attributes")
        var units: [UInt16] = []
        for _ in 0..<36 {
            let unit = try reader.readLittleEndian(UInt16.self, "name")
            if unit == 0 { break }
            units.append(unit)
        }
        name = String(decoding: units, as: UTF16.self)
    }

    public var isUnused: Bool { typeGUID.isZero }
    /// Attribute bit 2: legacy BIOS bootable.
    public var isLegacyBootable: Bool { attributes & 0x4 != 0 }
}
