import FerryBinary

extension NTFSFormatter {
    static let indexBlockSize = 4096
    /// Where entries start in an INDX block: header (24), node header (16), update sequence
    /// array (9 × 2 bytes), rounded up to 8.
    static let indexBlockEntries = 0x40

    /// `children` in $I30 order: by name folded through $UpCase, then by the exact name.
    static func sorted(_ children: [Int], layout: Layout) -> [Int] {
        let table = upcaseTable()
        func key(_ record: Int) -> ([UInt16], [UInt16]) {
            let units = Array((layout.file(record)?.name ?? "").utf16)
            return (units.map { table[Int($0)] }, units)
        }
        return children.sorted { a, b in
            let (ka, kb) = (key(a), key(b))
            return ka.0 != kb.0 ? ka.0.lexicographicallyPrecedes(kb.0) : ka.1.lexicographicallyPrecedes(kb.1)
        }
    }

    /// An index entry whose key is `child`'s $FILE_NAME; `subnode` adds the VCN of the block of
    /// smaller keys. With `child` nil, the node's closing entry.
    func indexEntry(_ child: Int?, subnode: Int?, layout: Layout) -> [UInt8] {
        let key = child.flatMap { layout.file($0) }.map(fileName) ?? []
        let length = 16 + align8(key.count) + (subnode == nil ? 0 : 8)
        var w = ByteWriter(capacity: length)
        w.writeLittleEndian(child.map(reference) ?? 0)
        w.writeLittleEndian(UInt16(length))
        w.writeLittleEndian(UInt16(key.count))
        w.writeLittleEndian(UInt32((subnode == nil ? 0 : 1) | (child == nil ? 2 : 0)))
        w.write(bytes: key)
        w.writeZeros(16 + align8(key.count) - w.bytes.count)
        if let subnode { w.writeLittleEndian(UInt64(subnode)) }
        return w.bytes
    }

    /// An index node header and its entries (formats §6.5): entries offset, bytes in use,
    /// bytes allocated, flags (1: entries have sub-nodes).
    func indexNode(_ entries: [UInt8], entriesOffset: Int, allocated: Int?, hasSubnodes: Bool) -> [UInt8] {
        var w = ByteWriter(capacity: 16 + entries.count)
        w.writeLittleEndian(UInt32(entriesOffset))
        w.writeLittleEndian(UInt32(entriesOffset + entries.count))
        w.writeLittleEndian(UInt32(allocated ?? entriesOffset + entries.count))
        w.writeLittleEndian(UInt32(hasSubnodes ? 1 : 0))
        w.writeZeros(entriesOffset - 16)
        w.write(bytes: entries)
        return w.bytes
    }

    /// $INDEX_ROOT's value: indexed attribute type, collation rule, block size, clusters per
    /// block, then the root node.
    func indexRoot(type: UInt32, collation: UInt32, node: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 16 + node.count)
        w.writeLittleEndian(type)
        w.writeLittleEndian(collation)
        w.writeLittleEndian(UInt32(Self.indexBlockSize))
        w.write(UInt8(Self.indexBlockSize / Self.clusterSize))
        w.writeZeros(3)
        w.write(bytes: node)
        return w.bytes
    }

    /// Splits a directory's sorted entries into INDX blocks when they do not fit in its record:
    /// each block but the last ends with the separator the root keeps (the entry that follows
    /// the block's keys). Empty when the whole index fits in $INDEX_ROOT.
    static func indexBlocks(for file: File, children: [Int], in layout: Layout) throws -> [[Int]] {
        let order = sorted(children, layout: layout)
        // An entry is its 16-byte header and its $FILE_NAME key (66 bytes and the name), 8-aligned.
        let entries = order.map { 16 + align8(66 + 2 * (layout.file($0)?.name.utf16.count ?? 0)) }
        let fixed = 0x38 + (24 + 72) + align8(24 + 66 + 2 * file.name.utf16.count) + (24 + 8 + 16 + 16) + 16 + 8
        if fixed + entries.reduce(0, +) <= recordSize { return [] }
        let capacity = indexBlockSize - indexBlockEntries - 16
        var blocks: [[Int]] = []
        var current: [Int] = []
        var used = 0
        for (index, child) in order.enumerated() {
            if used + entries[index] > capacity, !current.isEmpty {
                blocks.append(current + [child])  // `child` becomes the separator
                current = []
                used = 0
                continue
            }
            current.append(child)
            used += entries[index]
        }
        blocks.append(current)
        return blocks
    }

    /// INDX blocks a directory needs: its leaves, and above more than one leaf a block of
    /// separators (the root keeps only its closing entry pointing there, as Windows does, so
    /// the record never fills up).
    static func indexBlockCount(_ file: File) -> Int { file.blocks.count + (file.blocks.count > 1 ? 1 : 0) }

    /// The $I30 index of a directory: all in $INDEX_ROOT, or a root pointing into
    /// $INDEX_ALLOCATION's blocks with a $BITMAP of the blocks in use.
    func addIndex(to attributes: inout Attributes, _ file: File, layout: Layout) throws {
        guard case .directory(let children) = file.body else { return }
        var entries: [UInt8] = []
        let blocks = Self.indexBlockCount(file)
        if file.blocks.isEmpty {
            for child in Self.sorted(children, layout: layout) { entries += indexEntry(child, subnode: nil, layout: layout) }
            entries += indexEntry(nil, subnode: nil, layout: layout)
        } else {
            entries += indexEntry(nil, subnode: blocks - 1, layout: layout)
        }
        let node = indexNode(entries, entriesOffset: 16, allocated: nil, hasSubnodes: !file.blocks.isEmpty)
        attributes.resident(.indexRoot, name: "$I30", indexRoot(type: AttributeType.fileName.rawValue, collation: 1, node: node))
        guard blocks > 0 else { return }
        try attributes.nonResident(.indexAllocation, name: "$I30", runs: file.runs, dataSize: UInt64(blocks * Self.indexBlockSize))
        var bitmap = [UInt8](repeating: 0, count: align8((blocks + 7) / 8))
        for block in 0..<blocks { bitmap[block / 8] |= 1 << (block % 8) }
        attributes.resident(.bitmap, name: "$I30", bitmap)
    }

    /// The entries of INDX block `vcn`: a leaf's keys, or (the last block, over several
    /// leaves) the separators, each pointing to the leaf of smaller keys.
    func indexBlockEntries(vcn: Int, of file: File, layout: Layout) throws -> (entries: [UInt8], hasSubnodes: Bool) {
        if vcn < file.blocks.count {
            let block = file.blocks[vcn]
            let keys = vcn < file.blocks.count - 1 ? Array(block.dropLast()) : block
            return (keys.flatMap { indexEntry($0, subnode: nil, layout: layout) } + indexEntry(nil, subnode: nil, layout: layout), false)
        }
        var entries: [UInt8] = []
        for (leaf, block) in file.blocks.enumerated().dropLast() { entries += indexEntry(block.last, subnode: leaf, layout: layout) }
        entries += indexEntry(nil, subnode: file.blocks.count - 1, layout: layout)
        guard entries.count <= Self.indexBlockSize - Self.indexBlockEntries else {
            throw FormatError(.limitExceeded, structure: "NTFS format", field: "directory \(file.name)",
                "holds more entries than two index levels take")
        }
        return (entries, true)
    }

    /// One INDX block: header, node, entries, fix-ups applied.
    func indexBlock(vcn: Int, of file: File, layout: Layout) throws -> [UInt8] {
        let (entries, hasSubnodes) = try indexBlockEntries(vcn: vcn, of: file, layout: layout)
        var w = ByteWriter(capacity: Self.indexBlockSize)
        w.write(bytes: Array("INDX".utf8))
        w.writeLittleEndian(UInt16(0x28))  // update sequence array offset
        w.writeLittleEndian(UInt16(Self.indexBlockSize / FixUp.stride + 1))
        w.writeLittleEndian(UInt64(0))  // $LogFile sequence number
        w.writeLittleEndian(UInt64(vcn))
        // The node's padding up to its entries holds the update sequence array.
        w.write(bytes: indexNode(entries, entriesOffset: Self.indexBlockEntries - 0x18, allocated: Self.indexBlockSize - 0x18,
                                 hasSubnodes: hasSubnodes))
        w.writeZeros(Self.indexBlockSize - w.bytes.count)
        return try RawMFTRecord(number: UInt64(file.record), bytes: w.bytes, pieces: []).protected()
    }
}
