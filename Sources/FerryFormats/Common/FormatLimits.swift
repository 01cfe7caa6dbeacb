/// Named limits every reader enforces before trusting a size read from disk, so a
/// hostile header can neither make us allocate gigabytes nor loop forever.
enum FormatLimits {
    /// Longest backing / parent chain followed (base + overlays).
    static let maxChainDepth = 32
    /// Largest metadata table read in one piece (qemu caps qcow2 L1 at 32 MiB too).
    static let maxTableBytes = 32 << 20
    /// Memory budget of each reader's cache of second-level tables (L2, VMDK GTs).
    static let tableCacheBytes = 32 << 20
    /// Largest decompressed unit (qcow2 cluster, VMDK grain): 2 MiB, qemu's cluster maximum.
    static let maxCompressedUnit = 2 << 20
    /// Decompressed units kept for reads that touch the same cluster piecewise.
    static let compressedCacheEntries = 16
    /// Largest text descriptor accepted (real ones are under 2 KiB).
    static let maxDescriptorBytes = 1 << 20
    /// Most extents in one VMDK descriptor (a 64 TiB twoGbMaxExtent disk has 32768).
    static let maxExtents = 65536
}
