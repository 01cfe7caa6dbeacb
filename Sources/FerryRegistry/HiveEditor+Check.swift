import FerryBinary

/// The whole-hive check made before any edit. Every key reachable from the root is visited
/// once; each cell a record refers to must be an allocated cell of the right kind and must be
/// claimed by exactly one reference (security cells excepted: keys share them). A cycle or a
/// shared cell is refused, which is what lets the editor free a replaced cell safely.
extension HiveEditor {
    /// Returns whether every `lh` hash in the hive is the hash of its key's name; when so,
    /// lookups may skip the keys whose hash differs (`findSubkey`).
    func check() throws -> Bool {
        var hashesExact = true
        var claimed = Set<UInt32>()
        func claim(_ index: CellIndex, _ what: String) throws {
            guard cells.isAllocated(index) else {
                throw FormatError(.outOfRange, structure: what, field: "cell offset", offset: index.isNone ? nil : index.fileOffset,
                    "\(index.isNone ? "no cell" : "offset \(index.value)") is not an allocated cell")
            }
            guard claimed.insert(index.value).inserted else {
                throw FormatError(.cycle, structure: what, offset: index.fileOffset, "the cell at \(index.value) is referenced twice")
            }
        }
        var securityCells = Set<UInt32>()
        var pending: [(index: CellIndex, parent: CellIndex?, hash: UInt32?)] = [(baseBlock.rootCellOffset, nil, nil)]
        while let (index, parent, hash) = pending.popLast() {
            try claim(index, "nk cell")
            let key = try keyNode(index)
            if let hash, hash != SubkeyList.lhHash(key.name) { hashesExact = false }
            // hivex (node_parent) and Windows follow the parent field; it must be the real one.
            if let parent, key.parent != parent {
                throw FormatError(.inconsistent, structure: "nk cell", field: "parent", offset: index.fileOffset + 20,
                    "the key \"\(key.name)\" says its parent is at \(key.parent.value), but it is listed under \(parent.value)")
            }
            try Self.checkName(key.nameBytes, compressed: key.flags & KeyNode.compressedName != 0, "nk cell", at: index)
            if !securityCells.contains(key.security.value) {
                let sk = try SecurityKey(parsing: cells.data(key.security, "sk cell"), cellOffset: key.security)
                // Deleting a key may unlink its sk from the ring: both neighbours must be sk cells.
                for link in [sk.flink, sk.blink] {
                    _ = try SecurityKey(parsing: cells.data(link, "sk cell"), cellOffset: link)
                }
                securityCells.insert(key.security.value)
            }
            pending += try checkSubkeys(of: key, claim: claim).map { ($0.0, index, $0.1) }
            try checkValues(of: key, claim: claim)
        }
        return hashesExact
    }

    /// The subkeys with the `lh` hash their list stores for each (nil in lf/li lists).
    private func checkSubkeys(of key: KeyNode, claim: (CellIndex, String) throws -> Void) throws -> [(CellIndex, UInt32?)] {
        guard key.subkeyCount > 0 else { return [] }
        guard key.subkeyCount <= UInt32(Hive.maxSubkeys) else {
            throw FormatError(.limitExceeded, structure: "nk cell", field: "number of subkeys", offset: key.cellOffset.fileOffset,
                "\(key.subkeyCount) subkeys exceed the limit of \(Hive.maxSubkeys)")
        }
        try claim(key.subkeyList, "subkey list")
        let top = try subkeyList(key.subkeyList)
        var children: [(CellIndex, UInt32?)] = []
        func entries(_ list: SubkeyList) -> [(CellIndex, UInt32?)] {
            list.offsets.enumerated().map { i, offset in (offset, list.kind == .lh ? list.hints[i] : nil) }
        }
        if top.kind == .ri {
            for leafIndex in top.offsets {
                try claim(leafIndex, "subkey list")
                let leaf = try subkeyList(leafIndex)
                guard leaf.kind != .ri else {
                    throw FormatError(.inconsistent, structure: "ri list", offset: leafIndex.fileOffset, "an ri list points at another ri list")
                }
                children += entries(leaf)
                guard children.count <= Hive.maxSubkeys else { break }
            }
        } else {
            children = entries(top)
        }
        guard children.count == Int(key.subkeyCount) else {
            throw FormatError(.inconsistent, structure: "nk cell", field: "number of subkeys", offset: key.cellOffset.fileOffset + 24,
                "the key says \(key.subkeyCount) subkeys but its lists hold \(children.count)")
        }
        return children
    }

    private func checkValues(of key: KeyNode, claim: (CellIndex, String) throws -> Void) throws {
        guard key.valueCount > 0 else { return }
        try claim(key.valueList, "value list")
        for offset in try valueOffsets(of: key) {
            try claim(offset, "vk cell")
            let vk = try valueKey(offset)
            try Self.checkName(vk.nameBytes, compressed: vk.flags & 1 != 0, "vk cell", at: offset)
            for (cell, what) in try dataCells(of: vk) { try claim(cell, what) }
        }
    }

    /// A UTF-16 name must be whole code units and valid UTF-16: hivex converts names with iconv
    /// and refuses a lone surrogate (`value_key: Invalid argument`), and so would the export.
    static func checkName(_ bytes: [UInt8], compressed: Bool, _ what: String, at index: CellIndex) throws {
        guard !compressed else { return }
        var valid = bytes.count % 2 == 0
        if valid {
            var iterator = bytes.utf16LittleEndianUnits.makeIterator()
            var decoder = UTF16()
            decoding: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: break decoding
                case .error:
                    valid = false
                    break decoding
                }
            }
        }
        guard valid else {
            throw FormatError(.inconsistent, structure: what, field: "name", offset: index.fileOffset, "the UTF-16 name is not valid UTF-16")
        }
    }

    /// The cells holding a value's data: none (inline or empty), one data cell, or a `db` cell,
    /// its segment list and its segments. Throws when they do not hold `dataSize` bytes.
    func dataCells(of vk: ValueKey) throws -> [(CellIndex, String)] {
        let size = Int(vk.dataSize)
        let at = vk.cellOffset.isNone ? nil : vk.cellOffset.fileOffset + 8
        if vk.isInline {
            guard size <= 4 else {
                throw FormatError(.inconsistent, structure: "vk cell", field: "data size", offset: at, "inline data of \(size) bytes (at most 4 fit)")
            }
            return []
        }
        guard size > 0 else { return [] }
        guard size <= Hive.maxValueLength else {
            throw FormatError(.limitExceeded, structure: "vk cell", field: "data size", offset: at,
                "\(size) bytes exceed the limit of \(Hive.maxValueLength)")
        }
        let data = try cells.data(vk.dataCell, "value data")
        if size > BigData.segmentSize, baseBlock.minorVersion >= 4, data.starts(with: Array("db".utf8)) {
            let db = try BigData(parsing: data, cellOffset: vk.dataCell)
            let list = try cells.data(db.segmentList, "db segment list")
            let count = Int(db.segmentCount)
            guard count > 0, count * 4 <= list.count else {
                throw FormatError(.outOfRange, structure: "db cell", field: "number of segments", offset: vk.dataCell.fileOffset,
                    "\(count) segments do not fit in a \(list.count)-byte list")
            }
            var out: [(CellIndex, String)] = [(vk.dataCell, "db cell"), (db.segmentList, "db segment list")]
            var held = 0
            for i in 0..<count {
                let segment = CellIndex(list.littleEndian(UInt32.self, at: i * 4) ?? CellIndex.none.value)
                guard cells.isAllocated(segment) else {
                    throw FormatError(.outOfRange, structure: "db segment", offset: db.segmentList.fileOffset,
                        "segment \(i) is not an allocated cell")
                }
                held += min(BigData.segmentSize, cells.capacity(segment))
                out.append((segment, "db segment"))
            }
            guard held >= size else {
                throw FormatError(.truncated, structure: "db cell", offset: vk.dataCell.fileOffset, "segments hold \(held) of \(size) bytes")
            }
            return out
        }
        guard data.count >= size else {
            throw FormatError(.outOfRange, structure: "value data", offset: vk.dataCell.fileOffset,
                "the value claims \(size) bytes but its cell holds \(data.count)")
        }
        return [(vk.dataCell, "value data")]
    }

    /// A value's data bytes.
    func valueData(_ vk: ValueKey) throws -> [UInt8] {
        let size = Int(vk.dataSize)
        if vk.isInline {
            return Array((0..<4).map { UInt8(truncatingIfNeeded: vk.dataOffset >> (8 * UInt32($0))) }.prefix(size))
        }
        let parts = try dataCells(of: vk)
        if parts.count == 1 { return Array(try cells.data(parts[0].0, "value data").prefix(size)) }
        var out: [UInt8] = []
        for (cell, what) in parts.dropFirst(2) where out.count < size {
            out += try cells.data(cell, what).prefix(min(BigData.segmentSize, size - out.count))
        }
        return out
    }
}
