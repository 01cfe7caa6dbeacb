/// Recognises a volume boot sector (VBR) in a sector that also ends in `55 AA`, so a bare
/// partition image is never mistaken for a partitioned disk (formats §5.5, step 2).
public enum BootSectorProbe {
    public enum Kind: String, Sendable {
        case ntfs, exfat, fat, bitlocker
    }

    /// The kind of volume whose boot sector `sector` is, or nil.
    public static func volumeKind(_ sector: [UInt8]) -> Kind? {
        guard sector.count >= 512 else { return nil }
        let oem = Array(sector[3..<11])
        if oem == Array("NTFS    ".utf8) { return .ntfs }
        if oem == Array("EXFAT   ".utf8) { return .exfat }
        if oem == Array("-FVE-FS-".utf8) { return .bitlocker }
        return looksLikeFATBPB(sector) ? .fat : nil
    }

    /// A FAT BIOS parameter block: x86 jump, bytes/sector a power of two in 512…4096,
    /// sectors/cluster a power of two, reserved ≥ 1, 1–2 FATs, a valid media byte.
    static func looksLikeFATBPB(_ s: [UInt8]) -> Bool {
        guard (s[0] == 0xEB && s[2] == 0x90) || s[0] == 0xE9 else { return false }
        guard let bps = s.littleEndian(UInt16.self, at: 11), [512, 1024, 2048, 4096].contains(bps) else { return false }
        let spc = s[13]
        guard spc != 0, spc & (spc - 1) == 0 else { return false }
        guard let reserved = s.littleEndian(UInt16.self, at: 14), reserved >= 1 else { return false }
        guard s[16] == 1 || s[16] == 2 else { return false }
        guard s[21] == 0xF0 || s[21] >= 0xF8 else { return false }
        return true
    }
}
