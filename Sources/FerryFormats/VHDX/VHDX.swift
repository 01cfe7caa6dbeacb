import FerryBinary

/// VHDX, Hyper-V's format ([MS-VHDX] v1.00). Little-endian; GUIDs in Microsoft
/// mixed-endian form; headers and region tables checked with CRC-32C.
///
/// ```
///  0        64K       128K      192K      256K      1M …
///  [ident  ][header 1][header 2][regions 1][regions 2][log][BAT][metadata][blocks…]
///  BAT entry: bits 0-2 state, bits 20-63 file offset in MiB. Every chunkRatio payload
///  entries are followed by one sector-bitmap entry:
///    payload index of block b = b + b / chunkRatio,
///    chunkRatio = 2^23 * logicalSectorSize / blockSize
/// ```
public enum VHDX {
    static let headerStructure = "VHDX header"
    static let regionStructure = "VHDX region table"

    enum Region {
        static let bat = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
        static let metadata = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
    }

    enum Item {
        static let fileParameters = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
        static let virtualDiskSize = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
        static let logicalSectorSize = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
        static let physicalSectorSize = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
        static let page83 = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
        static let parentLocator = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
    }

    /// The on-disk bytes of a GUID written as text: Data1 (u32), Data2, Data3 (u16)
    /// little-endian, then the last 8 bytes in order.
    static func guid(_ text: String) -> [UInt8] {
        let hex = Array(text.utf8.filter { $0 != UInt8(ascii: "-") })
        var raw: [UInt8] = []
        var i = 0
        while i + 1 < hex.count {
            raw.append(UInt8(String(decoding: hex[i...i + 1], as: UTF8.self), radix: 16) ?? 0)
            i += 2
        }
        guard raw.count == 16 else { return [UInt8](repeating: 0, count: 16) }
        return [raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]] + raw[8..<16]
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) over `bytes`, with the
    /// 4-byte checksum field at `field` treated as zero ([MS-VHDX] 2.2.2).
    static func crc32c(_ bytes: [UInt8], zeroing field: Int) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for (i, byte) in bytes.enumerated() {
            let b = (i >= field && i < field + 4) ? 0 : byte
            crc = crcTable[Int((crc ^ UInt32(b)) & 0xff)] ^ (crc >> 8)
        }
        return ~crc
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}
