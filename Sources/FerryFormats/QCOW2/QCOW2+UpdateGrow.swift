import FerryBinary

extension QCOW2.UpdateState {
    /// Replaces a refcount table too small to count cluster group `group` with a larger one
    /// at the end of the file (qemu's `alloc_refcount_blocks_and_table`):
    ///
    /// ```
    ///  frontier ─► [ new table: ≥ 2× the old, covering `group` ][ new refcount blocks ]
    ///              every cluster of both counted 1, in blocks old or new
    /// ```
    /// The new table lists the old blocks and the new ones. Flush phase 1 writes the blocks,
    /// the table, then the header's two table fields in one write; the old table's clusters
    /// are released in phase 3. Until the header write the old table is the image's, and the
    /// new clusters lie past everything it counts (unreferenced, not even a leak).
    mutating func growRefcountTable(covering group: Int) throws {
        let perTableCluster = Int(clusterSize / 8)
        var entries = max(refcountTable.count * 2, group + 1)
        entries = (entries + perTableCluster - 1) / perTableCluster * perTableCluster
        let start = frontier
        // Blocks for the groups the new clusters fall in that have none; placing them may
        // reach a further group, so repeat until the layout settles.
        var newBlocks: [Int] = []
        while true {
            let tableClusters = UInt64(entries / perTableCluster)
            let end = start + tableClusters + UInt64(newBlocks.count)
            let lastGroup = Int((end - 1) / geometry.refcountsPerBlock)
            guard lastGroup < entries else {
                entries = (lastGroup + 1 + perTableCluster - 1) / perTableCluster * perTableCluster
                continue
            }
            let firstGroup = Int(start / geometry.refcountsPerBlock)
            let missing = (firstGroup...lastGroup).filter { g in
                g >= refcountTable.count || refcountTable[g] & QCOW2.refcountBlockMask == 0
            }
            if missing == newBlocks { break }
            newBlocks = missing
        }
        let bytes = UInt64(entries) * 8
        guard bytes <= UInt64(FormatLimits.maxTableBytes) else {
            throw FormatError(.limitExceeded, structure: "qcow2 refcount table", file: io.path,
                              "a refcount table of \(bytes) bytes would exceed the \(FormatLimits.maxTableBytes)-byte limit")
        }
        let tableClusters = UInt64(entries / perTableCluster)
        let end = start + tableClusters + UInt64(newBlocks.count)
        // Check before changing anything: a cluster past the end that already has a refcount
        // is a damaged image, not ours to hand out.
        for c in start..<end {
            let (t, w) = groupOf(c)
            guard t < refcountTable.count, refcountTable[t] & QCOW2.refcountBlockMask != 0 else { continue }
            let blockOffset = HostOffset(refcountTable[t] & QCOW2.refcountBlockMask)
            guard try block(blockOffset)[w] == 0 else {
                throw corrupt("refcount block at \(blockOffset.bytes)", "cluster \(c) past the end of the file already has a refcount")
            }
        }
        var table = refcountTable + [UInt64](repeating: 0, count: entries - refcountTable.count)
        for (i, g) in newBlocks.enumerated() {
            let at = HostOffset((start + tableClusters + UInt64(i)) * clusterSize)
            table[g] = at.bytes
            blocks[at] = [UInt16](repeating: 0, count: Int(geometry.refcountsPerBlock))
            blocksDirty.insert(at)
        }
        let oldTable = (refcountTableOffset, UInt64(refcountTable.count) * 8)
        refcountTable = table
        for c in start..<end {
            let (t, w) = groupOf(c)
            let blockOffset = HostOffset(refcountTable[t] & QCOW2.refcountBlockMask)
            var b = try block(blockOffset)
            b[w] = 1
            blocks[blockOffset] = b
            blocksDirty.insert(blockOffset)
            metadata.insert(c)
            allocated += 1
        }
        frontier = end
        refcountTableOffset = HostOffset(start * clusterSize)
        refcountTableDirty = true
        refcountTableMoved = true
        pendingFree.append(oldTable)
    }
}
