/// qcow2, QEMU's copy-on-write format (spec: qemu `docs/interop/qcow2.rst`).
/// All integers are big-endian.
///
/// ```
///  host file                                     guest (virtual disk)
///  +-----------+ cluster 0                       cluster index c = vaddr >> cluster_bits
///  | header    |  magic QFI\xfb, version,        l1 = c / l2_entries, l2 = c % l2_entries
///  | exts, name|  size, cluster_bits, L1 ptr     (l2_entries = cluster_size / 8, or /16
///  +-----------+                                  with extended L2)
///  | refcounts |  (not needed to read)
///  +-----------+         L1[l1] bits 9-55 ──► L2 table (one cluster)
///  | L1 table  | ─────►  L2[l2] ─┬─ 0                       unallocated: backing or zeros
///  +-----------+                 ├─ bit 0 (v3)              reads as zeros
///  | L2 tables |                 ├─ bits 9-55 = host off    data cluster
///  | data ...  |                 └─ bit 62 = compressed:    host byte offset + extra sectors
///  +-----------+                                            (raw deflate or zstd)
/// ```
public enum QCOW2 {
    /// "QFI\xfb"
    static let magic: UInt32 = 0x5146_49fb
    /// Host-offset bits of L1 entries and standard L2 entries (bits 9–55).
    static let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
    static let copiedFlag: UInt64 = 1 << 63
    static let compressedFlag: UInt64 = 1 << 62
    static let zeroFlag: UInt64 = 1
}
