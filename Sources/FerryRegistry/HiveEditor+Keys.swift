import FerryBinary

/// Creating keys: the new nk shares its parent's security cell (reference count + 1) and is
/// inserted in sorted position into the parent's subkey list (formats §7.4 step 4). A leaf
/// that would pass `maxLeafEntries` is split in two under an `ri` index.
extension HiveEditor {
    /// Longest key name Windows accepts, in UTF-16 units.
    public static let maxKeyNameLength = 255

    /// Creates the key and any missing parents (path components below the root, matched
    /// case-insensitively like Windows); returns true when something was created.
    @discardableResult public mutating func createKey(_ path: [String]) throws -> Bool {
        try transaction { try $0.createKeyBody(path) }
    }

    private mutating func createKeyBody(_ path: [String]) throws -> Bool {
        guard path.count <= Hive.maxPathDepth else {
            throw HiveEditError(.limitExceeded, "a path of \(path.count) keys is deeper than \(Hive.maxPathDepth)")
        }
        var current = try keyNode(baseBlock.rootCellOffset)
        var created = false
        for part in path {
            if let next = try findSubkey(part, of: current) {
                current = next
                continue
            }
            try Self.checkKeyName(part)
            current = try addSubkey(part, to: current)
            created = true
        }
        return created
    }

    static func checkKeyName(_ name: String) throws {
        guard !name.isEmpty, !name.contains("\\"), name.utf16.count <= maxKeyNameLength,
            !name.unicodeScalars.contains(where: { $0.value == 0 })
        else {
            throw HiveEditError(.badName, "\"\(name)\" is not a key name (1…\(maxKeyNameLength) characters, no backslash or NUL)")
        }
    }

    /// Default list kind for a key that had none: `lh` needs minor ≥ 5, `lf` minor ≥ 3.
    var newListKind: SubkeyList.Kind {
        baseBlock.minorVersion >= 5 ? .lh : (baseBlock.minorVersion >= 3 ? .lf : .li)
    }

    private mutating func addSubkey(_ name: String, to parentKey: KeyNode) throws -> KeyNode {
        var parent = parentKey
        guard parent.subkeyCount < UInt32(Hive.maxSubkeys) else {
            throw HiveEditError(.limitExceeded, "\(parent.name) already has \(parent.subkeyCount) subkeys")
        }
        var sk = try SecurityKey(parsing: cells.data(parent.security, "sk cell"), cellOffset: parent.security)
        guard sk.referenceCount < UInt32.max else {
            throw HiveEditError(.limitExceeded, "the security cell at \(parent.security.value) has the largest reference count")
        }
        var child = KeyNode(name: name, parent: parent.cellOffset, security: parent.security, lastWritten: timestamp)
        child.cellOffset = try cells.store(child.recordBytes)
        sk.referenceCount += 1
        try cells.write(sk.recordBytes, at: parent.security)

        parent.subkeyList = try insert(child, named: name, into: parent)
        parent.subkeyCount += 1
        parent.maxSubkeyNameBytes = max(parent.maxSubkeyNameBytes, RegistryName.utf16Bytes(name))
        parent.lastWritten = timestamp
        try store(parent)
        markModified()
        return child
    }

    /// Writes the parent's new subkey list(s) with `child` in sorted position, frees the
    /// replaced cells, and returns the cell the parent should point at.
    private mutating func insert(_ child: KeyNode, named name: String, into parent: KeyNode) throws -> CellIndex {
        let (riCell, leaves) = try leaves(of: parent)
        guard !leaves.isEmpty else {
            let kind = newListKind
            let list = SubkeyList(kind: kind, offsets: [child.cellOffset], hints: SubkeyList.hint(for: name, kind: kind).map { [$0] } ?? [])
            return try cells.store(list.recordBytes)
        }
        // The leaf it belongs in: the first whose last entry sorts after the name, else the last.
        var which = leaves.count - 1
        for (i, leaf) in leaves.enumerated().dropLast() {
            guard let last = leaf.list.offsets.last else { continue }
            if RegistryName.precedes(name, try keyNode(last).name) {
                which = i
                break
            }
        }
        var leaf = leaves[which].list
        let position = try sortedPosition(of: name, in: leaf)
        leaf.offsets.insert(child.cellOffset, at: position)
        if let hint = SubkeyList.hint(for: name, kind: leaf.kind) { leaf.hints.insert(hint, at: position) }

        var replacement: [SubkeyList] = [leaf]
        if leaf.offsets.count > min(max(2, maxLeafEntries), Int(UInt16.max)) {
            let half = leaf.offsets.count / 2
            let hinted = !leaf.hints.isEmpty
            replacement = [
                SubkeyList(kind: leaf.kind, offsets: Array(leaf.offsets[..<half]), hints: hinted ? Array(leaf.hints[..<half]) : []),
                SubkeyList(kind: leaf.kind, offsets: Array(leaf.offsets[half...]), hints: hinted ? Array(leaf.hints[half...]) : []),
            ]
        }
        var newCells: [CellIndex] = []
        for list in replacement { newCells.append(try cells.store(list.recordBytes)) }
        cells.release(leaves[which].cell)

        guard riCell != nil || newCells.count > 1 else { return newCells[0] }
        var top = riCell == nil ? newCells : leaves.map(\.cell)
        if riCell != nil { top.replaceSubrange(which...which, with: newCells) }
        guard top.count <= Int(UInt16.max) else {
            throw HiveEditError(.limitExceeded, "an ri list of \(top.count) leaves")
        }
        return try cells.replace(riCell, with: SubkeyList(kind: .ri, offsets: top).recordBytes)
    }

    /// Binary search by upper-cased name over the entries' key names.
    private func sortedPosition(of name: String, in leaf: SubkeyList) throws -> Int {
        var lo = 0, hi = leaf.offsets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if RegistryName.precedes(try keyNode(leaf.offsets[mid]).name, name) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
