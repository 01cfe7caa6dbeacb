import FerryBinary

extension KeyNode {
    /// A new key node with no subkeys, values or class (Suhanov §Key node).
    init(name: String, parent: CellIndex, security: CellIndex, lastWritten: UInt64) {
        let latin = RegistryName.latin1(name)
        cellOffset = .none
        flags = latin != nil ? Self.compressedName : 0
        self.lastWritten = lastWritten
        accessBits = 0
        self.parent = parent
        subkeyCount = 0
        volatileSubkeyCount = 0
        subkeyList = .none
        volatileSubkeyList = .none
        valueCount = 0
        valueList = .none
        self.security = security
        classOffset = .none
        maxSubkeyNameLength = 0
        maxClassLength = 0
        maxValueNameLength = 0
        maxValueDataSize = 0
        workVar = 0
        classLength = 0
        nameBytes = latin ?? RegistryName.utf16(name)
    }

    /// The largest subkey name in bytes of UTF-16 lives in the low 16 bits; the high bits are
    /// flags (virtualization, user, debug) that must be kept.
    var maxSubkeyNameBytes: UInt32 {
        get { maxSubkeyNameLength & 0xFFFF }
        set { maxSubkeyNameLength = (maxSubkeyNameLength & 0xFFFF_0000) | min(newValue, 0xFFFF) }
    }

    var recordBytes: [UInt8] {
        var w = ByteWriter(capacity: 76 + nameBytes.count)
        write(to: &w)
        return w.bytes
    }
}

extension ValueKey {
    /// A new value record; `dataSizeField` and `dataOffset` as `HiveEditor.storeData` made them.
    init(name: String, type: UInt32, dataSizeField: UInt32, dataOffset: UInt32) {
        let latin = RegistryName.latin1(name)
        cellOffset = .none
        self.dataSizeField = dataSizeField
        self.dataOffset = dataOffset
        self.type = type
        flags = latin != nil ? 1 : 0
        spare = 0
        nameBytes = latin ?? RegistryName.utf16(name)
    }

    var recordBytes: [UInt8] {
        var w = ByteWriter(capacity: 20 + nameBytes.count)
        write(to: &w)
        return w.bytes
    }
}

extension SubkeyList {
    var recordBytes: [UInt8] {
        var w = ByteWriter(capacity: 4 + 8 * offsets.count)
        write(to: &w)
        return w.bytes
    }

    /// The hint or hash this kind of list stores for `name` (nothing for li/ri).
    static func hint(for name: String, kind: Kind) -> UInt32? {
        switch kind {
        case .lh: return lhHash(name)
        case .lf: return lfHint(name)
        case .li, .ri: return nil
        }
    }
}

extension SecurityKey {
    var recordBytes: [UInt8] {
        var w = ByteWriter(capacity: Self.headerSize + descriptor.count)
        write(to: &w)
        return w.bytes
    }
}

extension RegistryName {
    /// UTF-16LE bytes of a name that is stored uncompressed.
    static func utf16(_ name: String) -> [UInt8] { name.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    /// Bytes of UTF-16 the name takes (the unit of the nk/vk "max name" fields).
    static func utf16Bytes(_ name: String) -> UInt32 { UInt32(name.utf16.count * 2) }

    /// Order of subkey lists: upper-cased names compared by UTF-16 code unit.
    static func precedes(_ a: String, _ b: String) -> Bool { foldKey(a).utf16.lexicographicallyPrecedes(foldKey(b).utf16) }
}
