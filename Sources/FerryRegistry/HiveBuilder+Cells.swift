import FerryBinary

/// Packs cells into hbins: a cell never crosses a bin boundary; a bin's unused tail becomes a free cell.
struct CellLayout {
    var cursor: UInt32 = 0
    var binEnd: UInt32 = 0
    var bins: [(start: UInt32, size: UInt32)] = []

    mutating func allocate(_ payload: Int) -> UInt32 {
        let size = UInt32((payload + 4 + 7) & ~7)
        if cursor + size > binEnd {
            let start = binEnd
            let binSize = max(4096, (size + 32 + 4095) & ~4095)
            bins.append((start, binSize))
            binEnd = start + binSize
            cursor = start + 32
        }
        defer { cursor += size }
        return cursor
    }

    /// Writes the bins: headers, the cells (size field negative = allocated), free tails.
    func finish(cells: [(UInt32, [UInt8])]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(binEnd))
        func put(_ bytes: [UInt8], at offset: Int) { out.replaceSubrange(offset..<offset + bytes.count, with: bytes) }
        var usedTo: [UInt32: UInt32] = [:]
        for (start, size) in bins {
            var header = ByteWriter()
            header.write(bytes: Array("hbin".utf8))
            header.writeLittleEndian(start)
            header.writeLittleEndian(size)
            header.writeZeros(20)
            put(header.bytes, at: Int(start))
            usedTo[start] = start + 32
        }
        for (offset, payload) in cells {
            let size = UInt32((payload.count + 4 + 7) & ~7)
            var w = ByteWriter()
            w.writeLittleEndian(Int32(-Int32(size)))
            w.write(bytes: payload)
            put(w.bytes, at: Int(offset))
            if let bin = bins.last(where: { $0.start <= offset }) { usedTo[bin.start] = max(usedTo[bin.start] ?? 0, offset + size) }
        }
        for (start, size) in bins {
            let used = usedTo[start] ?? start + 32
            if used < start + size {
                var w = ByteWriter()
                w.writeLittleEndian(Int32(start + size - used))
                put(w.bytes, at: Int(used))
            }
        }
        return out
    }
}

extension HiveBuilder {
    /// Allocates and serialises one key and everything below it; returns the nk offset.
    func emit(_ node: Node, parent: UInt32, sk: UInt32, isRoot: Bool, layout: inout CellLayout, cells: inout [(UInt32, [UInt8])]) -> UInt32 {
        let latin = Self.latin1(node.name)
        let nameBytes = latin ?? Self.utf16(node.name)
        let nk = layout.allocate(76 + nameBytes.count)

        var valueList: UInt32 = 0xFFFF_FFFF
        if !node.values.isEmpty {
            valueList = layout.allocate(4 * node.values.count)
            var list = ByteWriter()
            for (name, value) in node.values {
                list.writeLittleEndian(emitValue(name, value, layout: &layout, cells: &cells))
            }
            cells.append((valueList, list.bytes))
        }
        let children = node.children.sorted { $0.name.uppercased().utf16.lexicographicallyPrecedes($1.name.uppercased().utf16) }
        var subkeyList: UInt32 = 0xFFFF_FFFF
        var childOffsets: [UInt32] = []
        var leaves: [(UInt32, Range<Int>)] = []
        if !children.isEmpty {
            let chunks = stride(from: 0, to: children.count, by: maxLeafEntries).map { $0..<min($0 + maxLeafEntries, children.count) }
            if chunks.count > 1 { subkeyList = layout.allocate(4 + 4 * chunks.count) }
            for chunk in chunks { leaves.append((layout.allocate(4 + 8 * chunk.count), chunk)) }
            if chunks.count == 1 { subkeyList = leaves[0].0 }
            for child in children { childOffsets.append(emit(child, parent: nk, sk: sk, isRoot: false, layout: &layout, cells: &cells)) }
            let kind = minorVersion >= 5 ? "lh" : "lf"
            for (offset, range) in leaves {
                var w = ByteWriter()
                w.write(bytes: Array(kind.utf8))
                w.writeLittleEndian(UInt16(range.count))
                for i in range {
                    w.writeLittleEndian(childOffsets[i])
                    w.writeLittleEndian(kind == "lh" ? Self.lhHash(children[i].name) : Self.lfHint(children[i].name))
                }
                cells.append((offset, w.bytes))
            }
            if leaves.count > 1 {
                var w = ByteWriter()
                w.write(bytes: Array("ri".utf8))
                w.writeLittleEndian(UInt16(leaves.count))
                for (offset, _) in leaves { w.writeLittleEndian(offset) }
                cells.append((subkeyList, w.bytes))
            }
        }
        var w = ByteWriter()
        w.write(bytes: Array("nk".utf8))
        w.writeLittleEndian(UInt16((latin != nil ? 0x20 : 0) | (isRoot ? 0x0C : 0)))
        w.writeLittleEndian(UInt64(0))
        let maxSubkey = children.map { UInt32($0.name.utf16.count * 2) }.max() ?? 0
        let maxValueName = node.values.map { UInt32($0.name.utf16.count * 2) }.max() ?? 0
        let maxData = node.values.map { UInt32($0.value.data.count) }.max() ?? 0
        for v in [
            0, parent, UInt32(children.count), 0, subkeyList, 0xFFFF_FFFF, UInt32(node.values.count), valueList, sk, 0xFFFF_FFFF,
            maxSubkey, 0, maxValueName, maxData, 0,
        ] as [UInt32] { w.writeLittleEndian(v) }
        w.writeLittleEndian(UInt16(nameBytes.count))
        w.writeLittleEndian(UInt16(0))
        w.write(bytes: nameBytes)
        cells.append((nk, w.bytes))
        return nk
    }

    func emitValue(_ name: String, _ value: Value, layout: inout CellLayout, cells: inout [(UInt32, [UInt8])]) -> UInt32 {
        let latin = Self.latin1(name)
        let nameBytes = latin ?? Self.utf16(name)
        let vk = layout.allocate(20 + nameBytes.count)
        let data = value.data
        var sizeField = UInt32(data.count)
        var dataOffset: UInt32 = 0
        if data.count <= 4 {
            sizeField |= 0x8000_0000
            for (i, b) in data.enumerated() { dataOffset |= UInt32(b) << (8 * UInt32(i)) }
        } else if data.count > 16344, minorVersion >= 4 {
            let segments = stride(from: 0, to: data.count, by: 16344).map { Array(data[$0..<min($0 + 16344, data.count)]) }
            dataOffset = layout.allocate(8)
            let list = layout.allocate(4 * segments.count)
            var listBytes = ByteWriter()
            for segment in segments {
                let at = layout.allocate(segment.count)
                cells.append((at, segment))
                listBytes.writeLittleEndian(at)
            }
            cells.append((list, listBytes.bytes))
            var db = ByteWriter()
            db.write(bytes: Array("db".utf8))
            db.writeLittleEndian(UInt16(segments.count))
            db.writeLittleEndian(list)
            cells.append((dataOffset, db.bytes))
        } else {
            dataOffset = layout.allocate(data.count)
            cells.append((dataOffset, data))
        }
        var w = ByteWriter()
        w.write(bytes: Array("vk".utf8))
        w.writeLittleEndian(UInt16(nameBytes.count))
        w.writeLittleEndian(sizeField)
        w.writeLittleEndian(dataOffset)
        w.writeLittleEndian(value.type)
        w.writeLittleEndian(UInt16(latin != nil ? 1 : 0))
        w.writeLittleEndian(UInt16(0))
        w.write(bytes: nameBytes)
        cells.append((vk, w.bytes))
        return vk
    }

    static func latin1(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        for u in s.unicodeScalars {
            guard u.value < 256 else { return nil }
            out.append(UInt8(u.value))
        }
        return out
    }

    static func utf16(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    static func lhHash(_ name: String) -> UInt32 {
        var h: UInt32 = 0
        for u in name.uppercased().utf16 { h = h &* 37 &+ UInt32(u) }
        return h
    }

    static func lfHint(_ name: String) -> UInt32 {
        var b = Array((latin1(name) ?? []).prefix(4))
        b += [UInt8](repeating: 0, count: 4 - b.count)
        return b.littleEndian(UInt32.self, at: 0) ?? 0
    }
}
