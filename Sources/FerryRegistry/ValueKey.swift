public import FerryBinary

/// A `vk` cell: one value (Suhanov §Key value; formats §7.3).
///
/// ```
///  0 "vk"  2 name length u16 (0 = the default value)  4 data size u32 (bit 31: inline)
///  8 data offset (or the inline data)  12 type u32  16 flags u16 (0x1 Latin-1 name)  18 spare  20 name
/// ```
public struct ValueKey: Sendable, Equatable {
    public static let inlineFlag: UInt32 = 0x8000_0000

    public var cellOffset: CellIndex
    public var dataSizeField: UInt32
    /// The data's cell, or (when `isInline`) the data itself.
    public var dataOffset: UInt32
    public var type: UInt32
    public var flags: UInt16
    public var spare: UInt16
    public var nameBytes: [UInt8]

    public init(parsing data: [UInt8], cellOffset: CellIndex) throws {
        let base = cellOffset.dataFileOffset
        var r = ByteReader(data, structure: "vk cell", baseOffset: base)
        guard try r.readBytes(2, field: "signature") == Array("vk".utf8) else {
            throw FormatError(.badMagic, structure: "vk cell", field: "signature", offset: base, "expected \"vk\"")
        }
        self.cellOffset = cellOffset
        let nameLength = try r.readLittleEndian(UInt16.self, "value name length")
        dataSizeField = try r.readLittleEndian(UInt32.self, "data size")
        dataOffset = try r.readLittleEndian(UInt32.self, "data offset")
        type = try r.readLittleEndian(UInt32.self, "data type")
        flags = try r.readLittleEndian(UInt16.self, "flags")
        spare = try r.readLittleEndian(UInt16.self, "spare")
        nameBytes = try r.readBytes(Int(nameLength), field: "value name")
    }

    public func write(to w: inout ByteWriter) {
        w.write(bytes: Array("vk".utf8))
        w.writeLittleEndian(UInt16(truncatingIfNeeded: nameBytes.count))
        w.writeLittleEndian(dataSizeField)
        w.writeLittleEndian(dataOffset)
        w.writeLittleEndian(type)
        w.writeLittleEndian(flags)
        w.writeLittleEndian(spare)
        w.write(bytes: nameBytes)
    }

    /// The value's name; "" for the key's default value.
    public var name: String { RegistryName.decode(nameBytes, compressed: flags & 1 != 0) }
    public var isInline: Bool { dataSizeField & Self.inlineFlag != 0 }
    public var dataSize: UInt32 { dataSizeField & ~Self.inlineFlag }
    /// The cell holding the data (meaningless when `isInline`).
    public var dataCell: CellIndex { CellIndex(dataOffset) }
}
