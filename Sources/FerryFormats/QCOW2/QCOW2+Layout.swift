import FerryBinary

extension QCOW2 {
    /// Where the writer puts things (all cluster aligned, 64 KiB clusters):
    ///
    /// ```
    ///  cluster 0            header (v3, 104 bytes + end-of-extensions marker)
    ///  1 ..< 1+l1           L1 table (sized for the virtual size)
    ///  … ..< …+rt           refcount table (sized for a fully allocated image)
    ///  frontier ->          data clusters, L2 tables and refcount blocks, appended
    ///                       in the order they are first needed; nothing is ever
    ///                       freed, so every cluster below the frontier has refcount 1
    /// ```
    /// Appending keeps a single streaming pass cheap (no pre-scan of the source)
    /// and lets `flush()` rewrite L2 tables and refcount blocks in place.
    struct Layout: Sendable, Equatable {
        static let clusterBits: UInt32 = 16
        static let clusterSize: UInt64 = 1 << 16
        /// 16-bit refcounts (refcount_order 4), the qemu default.
        static let refcountOrder: UInt32 = 4
        static let refcountsPerBlock: UInt64 = clusterSize * 8 / 16
        static let l2Entries: UInt64 = clusterSize / 8
        /// The writer refuses larger disks: its L1 and refcount table stay below 1 MiB.
        static let maxVirtualSize: UInt64 = 64 << 40

        let virtualSize: UInt64
        let l1Entries: UInt64
        let l1Offset: UInt64
        let refcountTableOffset: UInt64
        let refcountTableClusters: UInt64
        /// The first cluster index handed out for data, L2 tables and refcount blocks.
        let firstFreeCluster: UInt64

        init(virtualSize: UInt64, target: String) throws {
            guard virtualSize <= Self.maxVirtualSize else {
                throw FormatError(.limitExceeded, structure: "qcow2 writer", file: target,
                                  "a virtual size of \(virtualSize) bytes exceeds the writer's \(Self.maxVirtualSize)-byte limit")
            }
            self.virtualSize = virtualSize
            let clusters = Self.ceil(virtualSize, Self.clusterSize)
            l1Entries = max(1, Self.ceil(clusters, Self.l2Entries))
            let l1Clusters = Self.ceil(l1Entries * 8, Self.clusterSize)
            // Worst case: every data cluster, every L2 table, the fixed clusters and the
            // refcount blocks themselves; iterate until the block count settles.
            let fixed = 1 + l1Clusters + clusters + l1Entries
            var blocks: UInt64 = 1
            var tableClusters: UInt64 = 1
            while true {
                let total = fixed + tableClusters + blocks
                let neededBlocks = Self.ceil(total, Self.refcountsPerBlock)
                let neededTable = Self.ceil(neededBlocks * 8, Self.clusterSize)
                if neededBlocks <= blocks && neededTable <= tableClusters { break }
                blocks = max(blocks, neededBlocks)
                tableClusters = max(tableClusters, neededTable)
            }
            l1Offset = Self.clusterSize
            refcountTableOffset = (1 + l1Clusters) * Self.clusterSize
            refcountTableClusters = tableClusters
            firstFreeCluster = 1 + l1Clusters + tableClusters
        }

        static func ceil(_ a: UInt64, _ b: UInt64) -> UInt64 { a / b + (a % b == 0 ? 0 : 1) }

        /// The header cluster's bytes (qcow2.rst "Header", version 3, no extensions).
        func headerBytes() -> [UInt8] {
            var w = ByteWriter(capacity: 112)
            w.writeBigEndian(QCOW2.magic)
            w.writeBigEndian(UInt32(3))
            w.writeBigEndian(UInt64(0))  // backing_file_offset
            w.writeBigEndian(UInt32(0))  // backing_file_size
            w.writeBigEndian(Self.clusterBits)
            w.writeBigEndian(virtualSize)
            w.writeBigEndian(UInt32(0))  // crypt_method
            w.writeBigEndian(UInt32(l1Entries))
            w.writeBigEndian(l1Offset)
            w.writeBigEndian(refcountTableOffset)
            w.writeBigEndian(UInt32(refcountTableClusters))
            w.writeBigEndian(UInt32(0))  // nb_snapshots
            w.writeBigEndian(UInt64(0))  // snapshots_offset
            w.writeBigEndian(UInt64(0))  // incompatible_features: never dirty
            w.writeBigEndian(UInt64(0))  // compatible_features
            w.writeBigEndian(UInt64(0))  // autoclear_features
            w.writeBigEndian(Self.refcountOrder)
            w.writeBigEndian(UInt32(104))  // header_length
            w.writeZeros(8)  // end of header extensions
            return w.bytes
        }
    }
}
