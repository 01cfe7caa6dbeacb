/// VMDK, VMware's virtual disk (VMware "Virtual Disk Format 5.0" technote; qemu
/// `block/vmdk.c`). Integers are little-endian; sizes and offsets count 512-byte sectors.
///
/// ```
///  descriptor (text file, or embedded at header.descriptorOffset)
///    version=1  CID=…  parentCID=ffffffff  createType="…"
///    RW 2097152 SPARSE "disk-s001.vmdk"      ─┐ extents are concatenated
///    RW 2097152 FLAT   "disk-f002.vmdk" 0     │ in order; sizes come from
///    RW 4096    ZERO                         ─┘ the descriptor
///
///  hosted sparse extent ("KDMV"):
///  +--------+------------+-----+-----+------------+----------------+
///  | header | descriptor | RGD | GTs | GD | GTs   | grains …       |
///  +--------+------------+-----+-----+------------+----------------+
///   GD[g / numGTEsPerGT] ──► GT[g % numGTEsPerGT] ──► grain sector (0 hole, 1 zeroed)
///   stream-optimized: GT entries point at grain markers {u64 lba, u32 size, zlib data}
/// ```
public enum VMDK {
    static let sparseMagic: UInt32 = 0x564d_444b  // "KDMV" read little-endian
    static let cowdMagic: UInt32 = 0x4457_4f43  // "COWD" read little-endian
    static let sectorSize: UInt64 = 512
    /// gdOffset value meaning "the grain directory is at the end, see the footer".
    static let gdAtEnd: UInt64 = 0xffff_ffff_ffff_ffff
    /// parentCID of a disk without a parent.
    static let noParent: UInt32 = 0xffff_ffff
}
