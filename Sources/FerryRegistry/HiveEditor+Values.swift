import FerryBinary

/// Setting and deleting values (formats §7.4 step 5): data of at most 4 bytes is stored in the
/// vk itself, larger data in one cell, and data over 16,344 bytes in a `db` record with
/// segments when the hive's minor version is ≥ 4 (older hives take one large cell).
extension HiveEditor {
    /// Longest value name Windows accepts, in UTF-16 units.
    public static let maxValueNameLength = 16_383

    /// Sets (creates or replaces) a value; `name` "" is the key's default value. The key must exist.
    public mutating func setValue(at path: [String], name: String, type: UInt32, data: [UInt8]) throws {
        try transaction { try $0.setValueBody(at: path, name: name, type: type, data: data) }
    }

    private mutating func setValueBody(at path: [String], name: String, type: UInt32, data: [UInt8]) throws {
        guard name.utf16.count <= Self.maxValueNameLength, !name.unicodeScalars.contains(where: { $0.value == 0 }) else {
            throw HiveEditError(.badName, "a value name of \(name.utf16.count) characters (or with a NUL) is not allowed")
        }
        guard data.count <= Hive.maxValueLength else {
            throw HiveEditError(.limitExceeded, "\(data.count) bytes of value data exceed the limit of \(Hive.maxValueLength)")
        }
        var key = try requireKey(path)
        var offsets = try valueOffsets(of: key)
        let existing = try findValue(name, in: offsets)
        if existing == nil, offsets.count >= Hive.maxValues {
            throw HiveEditError(.limitExceeded, "\(key.name) already has \(offsets.count) values")
        }
        let (sizeField, dataOffset) = try storeData(data)
        var vk = ValueKey(name: existing?.vk.name ?? name, type: type, dataSizeField: sizeField, dataOffset: dataOffset)
        vk.cellOffset = try cells.store(vk.recordBytes)
        if let existing {
            try releaseValue(existing.vk)
            offsets[existing.slot] = vk.cellOffset
        } else {
            offsets.append(vk.cellOffset)
        }
        key.valueList = try storeValueList(offsets, replacing: key)
        key.valueCount = UInt32(offsets.count)
        key.maxValueNameLength = max(key.maxValueNameLength, RegistryName.utf16Bytes(name))
        key.maxValueDataSize = max(key.maxValueDataSize, UInt32(data.count))
        key.lastWritten = timestamp
        try store(key)
        markModified()
    }

    /// Deletes a value; returns false when it was not there.
    @discardableResult public mutating func deleteValue(at path: [String], name: String) throws -> Bool {
        try transaction { try $0.deleteValueBody(at: path, name: name) }
    }

    private mutating func deleteValueBody(at path: [String], name: String) throws -> Bool {
        var key = try requireKey(path)
        var offsets = try valueOffsets(of: key)
        guard let found = try findValue(name, in: offsets) else { return false }
        offsets.remove(at: found.slot)
        try releaseValue(found.vk)
        key.valueList = try storeValueList(offsets, replacing: key)
        key.valueCount = UInt32(offsets.count)
        key.lastWritten = timestamp
        try store(key)
        markModified()
        return true
    }

    /// Writes a value list, in the key's current list cell when it has room; none for no values.
    private mutating func storeValueList(_ offsets: [CellIndex], replacing key: KeyNode) throws -> CellIndex {
        let old: CellIndex? = key.valueCount > 0 ? key.valueList : nil
        guard !offsets.isEmpty else {
            if let old { cells.release(old) }
            return .none
        }
        var w = ByteWriter(capacity: 4 * offsets.count)
        for offset in offsets { w.writeLittleEndian(offset.value) }
        return try cells.replace(old, with: w.bytes)
    }

    /// Frees a value's vk cell and the cells of its data.
    private mutating func releaseValue(_ vk: ValueKey) throws {
        for (cell, _) in try dataCells(of: vk) { cells.release(cell) }
        cells.release(vk.cellOffset)
    }

    /// Stores data and returns the vk's data size field and data offset field.
    private mutating func storeData(_ data: [UInt8]) throws -> (UInt32, UInt32) {
        if data.count <= 4 {
            var inline: UInt32 = 0
            for (i, byte) in data.enumerated() { inline |= UInt32(byte) << (8 * UInt32(i)) }
            return (UInt32(data.count) | ValueKey.inlineFlag, inline)
        }
        guard data.count > BigData.segmentSize, baseBlock.minorVersion >= 4 else {
            return (UInt32(data.count), try cells.store(data).value)
        }
        var segments: [CellIndex] = []
        for start in stride(from: 0, to: data.count, by: BigData.segmentSize) {
            segments.append(try cells.store(Array(data[start..<min(start + BigData.segmentSize, data.count)])))
        }
        var list = ByteWriter(capacity: 4 * segments.count)
        for segment in segments { list.writeLittleEndian(segment.value) }
        let listCell = try cells.store(list.bytes)
        var db = ByteWriter(capacity: 8)
        BigData(segmentCount: UInt16(segments.count), segmentList: listCell).write(to: &db)
        return (UInt32(data.count), try cells.store(db.bytes).value)
    }
}
