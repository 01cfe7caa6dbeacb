import FerryBinary

extension QCOW2 {
    /// The metadata of an image open for update, held in memory between flushes.
    ///
    /// Nothing here is written until `Updater.flush()`, which writes it in three phases
    /// (see `QCOW2+UpdateFlush.swift`); in memory it is always the image as it will be
    /// after the next flush. Clusters are only ever appended at `frontier`: a cluster
    /// freed by copy-on-write is not reused in the same session, so no on-disk metadata
    /// can point at a cluster this session hands out.
    struct UpdateState: Sendable {
        let io: UpdateIO
        let geometry: UpdateGeometry
        var l1: [UInt64]
        var l1Dirty = false
        /// Decoded L2 tables by host offset; dirty ones are written at flush.
        var l2: [HostOffset: [UInt64]] = [:]
        var l2Dirty: Set<HostOffset> = []
        var refcountTable: [UInt64]
        var refcountTableDirty = false
        /// Where the refcount table is; it moves when it grows (`growRefcountTable`), and the
        /// header then points at the new place (written by phase 1 of a flush).
        var refcountTableOffset: HostOffset
        var refcountTableMoved = false
        /// Decoded refcount blocks (16-bit entries) by host offset.
        var blocks: [HostOffset: [UInt16]] = [:]
        var blocksDirty: Set<HostOffset> = []
        /// Host byte ranges whose clusters lose one reference once the new L2 entries
        /// are durable (phase 3 of a flush): a crash before then leaks, never corrupts.
        var pendingFree: [(offset: HostOffset, length: UInt64)] = []
        /// Clusters holding metadata (header, L1, refcount structures, L2 tables, the
        /// snapshot table and snapshot L1 tables): a data write into one is refused.
        var metadata: Set<UInt64> = []
        /// The next cluster index to hand out.
        var frontier: UInt64
        /// Clusters below this index existed when the image was opened; every offset read
        /// from the image's own tables must lie below it.
        let originalClusters: UInt64
        /// Clusters allocated this session (for the statistics and the tests).
        var allocated: UInt64 = 0

        var clusterSize: UInt64 { geometry.clusterSize }

        // MARK: L2 entries

        /// The L2 entry for guest cluster `index`, or 0 where no L2 table exists.
        mutating func entry(_ index: UInt64) throws -> UInt64 {
            let l1Index = Int(index / geometry.l2Entries)
            guard l1Index < l1.count else { return 0 }
            let tableOffset = l1[l1Index] & QCOW2.offsetMask
            guard tableOffset != 0 else { return 0 }
            let table = try l2Table(HostOffset(tableOffset), l1Index: l1Index)
            return table[Int(index % geometry.l2Entries)]
        }

        /// Loads (and validates) an L2 table, caching it.
        mutating func l2Table(_ offset: HostOffset, l1Index: Int) throws -> [UInt64] {
            if let table = l2[offset] { return table }
            if l2.count >= geometry.maxCachedTables {
                // Only clean tables read from the image may go: dirty ones wait for the next
                // flush, and this session's own tables hold offsets past the original end.
                let limit = originalClusters * clusterSize
                l2 = l2.filter { l2Dirty.contains($0.key) || $0.key.bytes >= limit }
            }
            let raw = try io.bytes(at: offset, count: Int(clusterSize))
            let table = QCOW2.decodeBigEndian(raw)
            for (i, e) in table.enumerated() { try validate(e, in: offset, index: i) }
            l2[offset] = table
            return table
        }

        /// A hostile entry (unaligned, past the end of the file as opened) is refused
        /// before anything is written through it.
        private func validate(_ e: UInt64, in table: HostOffset, index: Int) throws {
            if e & QCOW2.compressedFlag != 0 {
                let host = e & geometry.compressedOffsetMask
                guard host < originalClusters * clusterSize else {
                    throw corrupt("L2 table at \(table.bytes), entry \(index)", "compressed cluster at \(host) lies past the end of the file")
                }
                return
            }
            let host = e & QCOW2.offsetMask
            guard host & (clusterSize - 1) == 0 else {
                throw corrupt("L2 table at \(table.bytes), entry \(index)", "data cluster offset \(host) is not cluster aligned")
            }
            guard host / clusterSize < originalClusters else {
                throw corrupt("L2 table at \(table.bytes), entry \(index)", "data cluster at \(host) lies past the end of the file")
            }
            if host != 0, metadata.contains(host / clusterSize) {
                throw corrupt("L2 table at \(table.bytes), entry \(index)", "data cluster at \(host) is also image metadata")
            }
            if e & QCOW2.zeroFlag != 0, geometry.version < 3 {
                throw corrupt("L2 table at \(table.bytes), entry \(index)", "zero flag set in a version 2 image")
            }
        }

        func corrupt(_ field: String, _ detail: String) -> FormatError {
            FormatError(.inconsistent, structure: "qcow2 image", field: field, file: io.path,
                        detail + "; not changed (qemu-img check -r all may repair it)")
        }

        /// Sets the L2 entry for guest cluster `index`, first giving the guest cluster's
        /// range an L2 table of its own: a new one where the L1 entry is empty, a copy
        /// where the table is shared with a snapshot (refcount > 1).
        mutating func setEntry(_ index: UInt64, _ value: UInt64) throws {
            let l1Index = Int(index / geometry.l2Entries)
            guard l1Index < l1.count else {
                throw corrupt("l1_size", "guest cluster \(index) lies beyond the L1 table")
            }
            var tableOffset = HostOffset(l1[l1Index] & QCOW2.offsetMask)
            if tableOffset.bytes == 0 {
                tableOffset = try allocate(metadata: true)
                l2[tableOffset] = [UInt64](repeating: 0, count: Int(geometry.l2Entries))
                l1[l1Index] = tableOffset.bytes | QCOW2.copiedFlag
                l1Dirty = true
            } else if try refcount(tableOffset.bytes / clusterSize) != 1 {
                let shared = try l2Table(tableOffset, l1Index: l1Index)
                let copy = try allocate(metadata: true)
                l2[copy] = shared
                pendingFree.append((tableOffset, clusterSize))
                l1[l1Index] = copy.bytes | QCOW2.copiedFlag
                l1Dirty = true
                tableOffset = copy
            } else if l1[l1Index] & QCOW2.copiedFlag == 0 {
                l1[l1Index] |= QCOW2.copiedFlag
                l1Dirty = true
            }
            _ = try l2Table(tableOffset, l1Index: l1Index)
            l2[tableOffset]?[Int(index % geometry.l2Entries)] = value
            l2Dirty.insert(tableOffset)
        }

        // MARK: Refcounts

        func groupOf(_ cluster: UInt64) -> (table: Int, within: Int) {
            (Int(cluster / geometry.refcountsPerBlock), Int(cluster % geometry.refcountsPerBlock))
        }

        mutating func block(_ offset: HostOffset) throws -> [UInt16] {
            if let b = blocks[offset] { return b }
            let b = UpdateIO.decode16(try io.bytes(at: offset, count: Int(clusterSize)))
            blocks[offset] = b
            return b
        }

        /// The refcount of a cluster (0 where no refcount block covers it).
        mutating func refcount(_ cluster: UInt64) throws -> UInt16 {
            let (t, w) = groupOf(cluster)
            guard t < refcountTable.count else { return 0 }
            let offset = refcountTable[t] & QCOW2.refcountBlockMask
            guard offset != 0 else { return 0 }
            return try block(HostOffset(offset))[w]
        }

        /// Hands out the next cluster at the end of the file with refcount 1, adding a
        /// refcount block first where its range has none (the block sits at the front of
        /// the range it covers, so it counts itself).
        mutating func allocate(metadata isMetadata: Bool = false) throws -> HostOffset {
            while true {
                let c = frontier
                let (t, w) = groupOf(c)
                guard t < refcountTable.count else {
                    try growRefcountTable(covering: t)
                    continue
                }
                frontier += 1
                let offset = HostOffset(c * clusterSize)
                if refcountTable[t] & QCOW2.refcountBlockMask == 0 {
                    var fresh = [UInt16](repeating: 0, count: Int(geometry.refcountsPerBlock))
                    fresh[w] = 1
                    blocks[offset] = fresh
                    blocksDirty.insert(offset)
                    refcountTable[t] = offset.bytes
                    refcountTableDirty = true
                    metadata.insert(c)
                    allocated += 1
                    continue
                }
                let blockOffset = HostOffset(refcountTable[t] & QCOW2.refcountBlockMask)
                var b = try block(blockOffset)
                // A cluster past the end with a refcount already is not ours to hand out.
                guard b[w] == 0 else { continue }
                b[w] = 1
                blocks[blockOffset] = b
                blocksDirty.insert(blockOffset)
                if isMetadata { metadata.insert(c) }
                allocated += 1
                return offset
            }
        }

        /// Drops one reference from every cluster touching `[offset, offset+length)`.
        mutating func release(_ offset: HostOffset, length: UInt64) throws {
            guard length > 0 else { return }
            let first = offset.bytes / clusterSize
            let last = (offset.bytes + length - 1) / clusterSize
            for c in first...last {
                let (t, w) = groupOf(c)
                guard t < refcountTable.count, refcountTable[t] & QCOW2.refcountBlockMask != 0 else { continue }
                let blockOffset = HostOffset(refcountTable[t] & QCOW2.refcountBlockMask)
                var b = try block(blockOffset)
                guard b[w] > 0 else { continue }  // already free: nothing to drop
                b[w] -= 1
                blocks[blockOffset] = b
                blocksDirty.insert(blockOffset)
            }
        }
    }

    /// The fixed shape of an image open for update.
    struct UpdateGeometry: Sendable {
        let version: UInt32
        let clusterBits: UInt32
        let virtualSize: UInt64
        let codec: Codec
        let l1Offset: HostOffset
        var clusterSize: UInt64 { 1 << UInt64(clusterBits) }
        var l2Entries: UInt64 { clusterSize / 8 }
        /// 16-bit refcounts (refcount_order 4), the only width the updater writes.
        var refcountsPerBlock: UInt64 { clusterSize / 2 }
        /// Host byte offset bits of a compressed L2 entry: 62 - (cluster_bits - 8).
        var compressedOffsetMask: UInt64 { (1 << (62 - (UInt64(clusterBits) - 8))) - 1 }
        var maxCachedTables: Int { max(16, FormatLimits.tableCacheBytes / Int(clusterSize)) }

        /// The host byte range a compressed L2 entry's data occupies (qcow2.rst
        /// "Compressed Clusters Descriptor"; qemu frees exactly this range).
        func compressedRange(_ e: UInt64) -> (offset: HostOffset, length: UInt64) {
            let x = 62 - (UInt64(clusterBits) - 8)
            let host = e & compressedOffsetMask
            let sectors = (e >> x) & ((1 << (UInt64(clusterBits) - 8)) - 1)
            let end = (host & ~511) + (sectors + 1) * 512
            return (HostOffset(host), end - host)
        }
    }

    /// Refcount table entries: bits 9–63 are the refcount block's offset.
    static let refcountBlockMask: UInt64 = ~UInt64(0x1ff)
}
