public import FerryBinary

/// An `nk` cell: one registry key (Suhanov §Key node; formats §7.3). Offsets are within
/// the cell data, i.e. after the 4-byte cell size.
///
/// ```
///  0 "nk"  2 flags u16  4 FILETIME  12 access bits  16 parent  20 #subkeys  24 #volatile
///  28 subkey list  32 volatile list  36 #values  40 value list  44 sk  48 class
///  52 max subkey name  56 max class  60 max value name  64 max value data  68 workvar
///  72 name length u16  74 class length u16  76 name (Latin-1 if flags & 0x20, else UTF-16LE)
/// ```
public struct KeyNode: Sendable, Equatable {
    public static let compressedName: UInt16 = 0x0020
    public static let hiveRoot: UInt16 = 0x0004

    /// Offset of this key's cell, relative to the first hbin.
    public var cellOffset: CellIndex
    public var flags: UInt16
    public var lastWritten: UInt64
    public var accessBits: UInt32
    public var parent: CellIndex
    public var subkeyCount: UInt32
    public var volatileSubkeyCount: UInt32
    public var subkeyList: CellIndex
    public var volatileSubkeyList: CellIndex
    public var valueCount: UInt32
    public var valueList: CellIndex
    public var security: CellIndex
    public var classOffset: CellIndex
    public var maxSubkeyNameLength: UInt32
    public var maxClassLength: UInt32
    public var maxValueNameLength: UInt32
    public var maxValueDataSize: UInt32
    public var workVar: UInt32
    public var classLength: UInt16
    public var nameBytes: [UInt8]

    public init(parsing data: [UInt8], cellOffset: CellIndex) throws {
        var r = ByteReader(data, structure: "nk cell", baseOffset: cellOffset.dataFileOffset)
        guard try r.readBytes(2, field: "signature") == Array("nk".utf8) else {
            throw FormatError(.badMagic, structure: "nk cell", field: "signature", offset: cellOffset.dataFileOffset, "expected \"nk\"")
        }
        self.cellOffset = cellOffset
        flags = try r.readLittleEndian(UInt16.self, "flags")
        lastWritten = try r.readLittleEndian(UInt64.self, "last written")
        accessBits = try r.readLittleEndian(UInt32.self, "access bits")
        parent = CellIndex(try r.readLittleEndian(UInt32.self, "parent"))
        subkeyCount = try r.readLittleEndian(UInt32.self, "number of subkeys")
        volatileSubkeyCount = try r.readLittleEndian(UInt32.self, "number of volatile subkeys")
        subkeyList = CellIndex(try r.readLittleEndian(UInt32.self, "subkeys list offset"))
        volatileSubkeyList = CellIndex(try r.readLittleEndian(UInt32.self, "volatile subkeys list offset"))
        valueCount = try r.readLittleEndian(UInt32.self, "number of values")
        valueList = CellIndex(try r.readLittleEndian(UInt32.self, "values list offset"))
        security = CellIndex(try r.readLittleEndian(UInt32.self, "key security offset"))
        classOffset = CellIndex(try r.readLittleEndian(UInt32.self, "class name offset"))
        maxSubkeyNameLength = try r.readLittleEndian(UInt32.self, "largest subkey name length")
        maxClassLength = try r.readLittleEndian(UInt32.self, "largest subkey class name length")
        maxValueNameLength = try r.readLittleEndian(UInt32.self, "largest value name length")
        maxValueDataSize = try r.readLittleEndian(UInt32.self, "largest value data size")
        workVar = try r.readLittleEndian(UInt32.self, "workvar")
        let nameLength = try r.readLittleEndian(UInt16.self, "key name length")
        classLength = try r.readLittleEndian(UInt16.self, "class name length")
        nameBytes = try r.readBytes(Int(nameLength), field: "key name")
    }

    public func write(to w: inout ByteWriter) {
        w.write(bytes: Array("nk".utf8))
        w.writeLittleEndian(flags)
        w.writeLittleEndian(lastWritten)
        for v in [
            accessBits, parent.value, subkeyCount, volatileSubkeyCount, subkeyList.value, volatileSubkeyList.value, valueCount,
            valueList.value, security.value, classOffset.value, maxSubkeyNameLength, maxClassLength, maxValueNameLength, maxValueDataSize, workVar,
        ] { w.writeLittleEndian(v) }
        w.writeLittleEndian(UInt16(truncatingIfNeeded: nameBytes.count))
        w.writeLittleEndian(classLength)
        w.write(bytes: nameBytes)
    }

    public var name: String { RegistryName.decode(nameBytes, compressed: flags & Self.compressedName != 0) }
}

/// Registry names are Latin-1 when "compressed" (KEY_COMP_NAME / VALUE_COMP_NAME), else UTF-16LE.
public enum RegistryName {
    public static func decode(_ bytes: [UInt8], compressed: Bool) -> String {
        if compressed { return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })) }
        return String(decoding: bytes.utf16LittleEndianUnits, as: UTF16.self)
    }

    /// Latin-1 bytes when every character fits (and the name can be stored compressed), else nil.
    public static func latin1(_ name: String) -> [UInt8]? {
        var out: [UInt8] = []
        for s in name.unicodeScalars {
            guard s.value < 256 else { return nil }
            out.append(UInt8(s.value))
        }
        return out
    }

    /// Case-insensitive comparison key used for lookups and the sort order of subkey lists.
    public static func foldKey(_ name: String) -> String { name.uppercased() }
}
