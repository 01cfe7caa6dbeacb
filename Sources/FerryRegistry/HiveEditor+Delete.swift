import FerryBinary

/// Deleting a key and its subtree: every cell of the subtree is freed, each key's security
/// cell loses one reference (an sk that drops to zero is unlinked from the ring and freed),
/// and the key leaves its parent's subkey list.
extension HiveEditor {
    /// Deletes the key at `path` and everything below it; returns false when it was not there.
    /// The root cannot be deleted.
    @discardableResult public mutating func deleteKey(_ path: [String]) throws -> Bool {
        try transaction { try $0.deleteKeyBody(path) }
    }

    private mutating func deleteKeyBody(_ path: [String]) throws -> Bool {
        guard !path.isEmpty else { throw HiveEditError(.unsupported, "the root key cannot be deleted") }
        guard var parent = try findKey(Array(path.dropLast())), let key = try findSubkey(path[path.count - 1], of: parent) else {
            return false
        }
        var pending = [key.cellOffset]
        while let index = pending.popLast() {
            let node = try keyNode(index)
            let (ri, leaves) = try leaves(of: node)
            for (cell, list) in leaves {
                pending += list.offsets
                cells.release(cell)
            }
            if let ri { cells.release(ri) }
            for offset in try valueOffsets(of: node) {
                let vk = try valueKey(offset)
                for (cell, _) in try dataCells(of: vk) { cells.release(cell) }
                cells.release(offset)
            }
            if node.valueCount > 0 { cells.release(node.valueList) }
            try dropReference(to: node.security)
            cells.release(index)
        }
        try remove(key.cellOffset, from: &parent)
        parent.lastWritten = timestamp
        try store(parent)
        markModified()
        return true
    }

    private mutating func dropReference(to index: CellIndex) throws {
        var sk = try SecurityKey(parsing: cells.data(index, "sk cell"), cellOffset: index)
        if sk.referenceCount > 1 {
            sk.referenceCount -= 1
            try cells.write(sk.recordBytes, at: index)
            return
        }
        // Last user gone: unlink from the ring (when it is not alone in it) and free.
        if sk.flink != index, cells.isAllocated(sk.flink), cells.isAllocated(sk.blink) {
            var next = try SecurityKey(parsing: cells.data(sk.flink, "sk cell"), cellOffset: sk.flink)
            next.blink = sk.blink
            try cells.write(next.recordBytes, at: sk.flink)
            var previous = try SecurityKey(parsing: cells.data(sk.blink, "sk cell"), cellOffset: sk.blink)
            previous.flink = sk.flink
            try cells.write(previous.recordBytes, at: sk.blink)
        }
        cells.release(index)
    }

    /// Takes `child` out of the parent's subkey list, rewriting the leaf (and the ri) in place.
    private mutating func remove(_ child: CellIndex, from parent: inout KeyNode) throws {
        let (ri, leaves) = try leaves(of: parent)
        guard let which = leaves.firstIndex(where: { $0.list.offsets.contains(child) }) else {
            throw FormatError(.inconsistent, structure: "subkey list", offset: parent.subkeyList.fileOffset, "the key is not in its parent's list")
        }
        var leaf = leaves[which].list
        let slot = leaf.offsets.firstIndex(of: child) ?? 0
        leaf.offsets.remove(at: slot)
        if slot < leaf.hints.count { leaf.hints.remove(at: slot) }
        parent.subkeyCount -= 1
        if parent.subkeyCount == 0 {
            for (cell, _) in leaves { cells.release(cell) }
            if let ri { cells.release(ri) }
            parent.subkeyList = .none
            return
        }
        if !leaf.offsets.isEmpty {
            try cells.write(leaf.recordBytes, at: leaves[which].cell)
            return
        }
        // An emptied leaf of an ri goes away.
        cells.release(leaves[which].cell)
        guard let ri else { return }
        var top = leaves.map(\.cell)
        top.remove(at: which)
        try cells.write(SubkeyList(kind: .ri, offsets: top).recordBytes, at: ri)
    }
}
