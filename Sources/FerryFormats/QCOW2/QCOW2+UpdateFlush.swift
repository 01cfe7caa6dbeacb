import FerryBinary

extension QCOW2.UpdateState {
    /// Makes every write durable, in qemu's order (qcow2.rst "Host cluster management";
    /// qemu's qcow2-cache dependencies), so that a crash between any two steps leaves an
    /// image whose worst fault is a leaked cluster:
    ///
    /// ```
    ///  1  refcount blocks (new clusters now count 1), fsync, refcount table, fsync,
    ///     the header if the table moved, fsync
    ///  2  L2 tables, fsync, L1 table, fsync     (data clusters were written before)
    ///  3  refcount decreases of clusters no longer referenced (COW sources), fsync
    /// ```
    /// A crash before 1 leaves new clusters unreferenced with refcount 0 (not even a
    /// leak); between 1 and 2, counted but unreferenced (a leak); between 2 and 3, an
    /// old cluster counted once too often (a leak).
    mutating func flush() throws {
        try writeRefcounts()
        if !l2Dirty.isEmpty {
            for offset in l2Dirty.sorted(by: <) {
                guard let table = l2[offset] else { continue }
                try io.write(QCOW2.UpdateIO.bigEndian(table), at: offset)
            }
            l2Dirty.removeAll()
            try io.sync()
        }
        if l1Dirty {
            try io.write(QCOW2.UpdateIO.bigEndian(l1), at: geometry.l1Offset)
            l1Dirty = false
            try io.sync()
        }
        if !pendingFree.isEmpty {
            for (offset, length) in pendingFree { try release(offset, length: length) }
            pendingFree.removeAll()
            try writeRefcounts()
        }
        try io.sync()
    }

    /// Dirty refcount blocks, then the table that points at new ones.
    private mutating func writeRefcounts() throws {
        guard !blocksDirty.isEmpty || refcountTableDirty else { return }
        for offset in blocksDirty.sorted(by: <) {
            guard let block = blocks[offset] else { continue }
            try io.write(QCOW2.UpdateIO.bigEndian(block), at: offset)
        }
        blocksDirty.removeAll()
        try io.sync()
        if refcountTableDirty {
            try io.write(QCOW2.UpdateIO.bigEndian(refcountTable), at: refcountTableOffset)
            refcountTableDirty = false
            try io.sync()
        }
        if refcountTableMoved {
            // refcount_table_offset (u64 at 48) and refcount_table_clusters (u32 at 56) in one
            // 12-byte write inside sector 0: the image switches tables at once.
            var w = ByteWriter(capacity: 12)
            w.writeBigEndian(refcountTableOffset.bytes)
            w.writeBigEndian(UInt32(UInt64(refcountTable.count) * 8 / clusterSize))
            try io.write(w.bytes, at: HostOffset(48))
            refcountTableMoved = false
            try io.sync()
        }
    }
}
