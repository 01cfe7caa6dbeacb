public import FerryDisk
import FerryBinary
import FerryPartitions

/// A file system (or volume container) recognised by its superblock.
public struct FileSystemInfo: Sendable, Equatable, Codable {
    /// "ntfs", "fat12", "fat16", "fat32", "exfat", "ext2", "ext3", "ext4", "xfs", "btrfs",
    /// "lvm2", "swap", "luks", "iso9660", "bitlocker".
    public var type: String
    public var label: String?
    public var uuid: String?

    public init(type: String, label: String? = nil, uuid: String? = nil) {
        self.type = type
        self.label = label.flatMap { $0.isEmpty ? nil : $0 }
        self.uuid = uuid
    }
}

/// Identifies the file system at an offset from its magic numbers (the places blkid and
/// formats §5.5 name): reads at most three small chunks (0, 32 KiB and 64 KiB in).
public enum FileSystemProbe {
    public static func identify(_ disk: any BlockDevice, at offset: UInt64, length: UInt64) throws -> FileSystemInfo? {
        func chunk(_ at: UInt64, _ count: Int) throws -> [UInt8]? {
            guard at.addingReportingOverflow(UInt64(count)).partialValue <= length, offset <= disk.size,
                at + UInt64(count) <= disk.size - offset
            else { return nil }
            return try disk.readBytes(at: offset + at, count: count)
        }
        guard let head = try chunk(0, 4096) else { return nil }
        if let found = bootSectorFileSystem(head) { return found }
        if head.starts(with: Array("XFSB".utf8)) {
            return FileSystemInfo(type: "xfs", label: cString(head, 108, 12), uuid: uuid(head, 32))
        }
        if head.starts(with: [0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE]) {
            return FileSystemInfo(type: "luks", label: nil, uuid: cString(head, 168, 40))
        }
        if head.littleEndian(UInt16.self, at: 1024 + 56) == 0xEF53 { return ext(head) }
        for sector in 0..<4 where Array(head[sector * 512..<sector * 512 + 8]) == Array("LABELONE".utf8) {
            let label = sector * 512
            if Array(head[label + 24..<label + 32]) == Array("LVM2 001".utf8) {
                return FileSystemInfo(type: "lvm2", label: nil, uuid: cString(head, label + 32, 32).map(lvmUUID))
            }
        }
        let swapMagic = Array(head[4086..<4096])
        if swapMagic == Array("SWAPSPACE2".utf8) || swapMagic == Array("SWAP-SPACE".utf8) {
            return FileSystemInfo(type: "swap", label: cString(head, 1024 + 28, 16), uuid: uuid(head, 1024 + 12))
        }
        if let iso = try chunk(32768, 2048), Array(iso[1..<6]) == Array("CD001".utf8) {
            return FileSystemInfo(type: "iso9660", label: cString(iso, 40, 32)?.trimmingTrailingSpaces, uuid: nil)
        }
        if let btrfs = try chunk(65536, 4096), Array(btrfs[64..<72]) == Array("_BHRfS_M".utf8) {
            return FileSystemInfo(type: "btrfs", label: cString(btrfs, 0x12B, 256), uuid: uuid(btrfs, 32))
        }
        return nil
    }

    /// NTFS, BitLocker, exFAT and FAT share the boot-sector shape.
    static func bootSectorFileSystem(_ s: [UInt8]) -> FileSystemInfo? {
        switch BootSectorProbe.volumeKind(s) {
        case .ntfs:
            let serial = s.littleEndian(UInt64.self, at: 72) ?? 0
            return FileSystemInfo(type: "ntfs", uuid: String(serial, radix: 16, uppercase: true).leftPadded(16))
        case .bitlocker: return FileSystemInfo(type: "bitlocker")
        case .exfat:
            let serial = s.littleEndian(UInt32.self, at: 100) ?? 0
            return FileSystemInfo(type: "exfat", uuid: serialText(serial))
        case .fat: return fat(s)
        case nil: return nil
        }
    }

    /// FAT12/16/32 by cluster count (Microsoft FAT spec "FAT type determination").
    static func fat(_ s: [UInt8]) -> FileSystemInfo {
        let bps = UInt64(s.littleEndian(UInt16.self, at: 11) ?? 512)
        let spc = UInt64(s[13])
        let reserved = UInt64(s.littleEndian(UInt16.self, at: 14) ?? 1)
        let fats = UInt64(s[16])
        let rootEntries = UInt64(s.littleEndian(UInt16.self, at: 17) ?? 0)
        let total16 = UInt64(s.littleEndian(UInt16.self, at: 19) ?? 0)
        let fatSize16 = UInt64(s.littleEndian(UInt16.self, at: 22) ?? 0)
        let total32 = UInt64(s.littleEndian(UInt32.self, at: 32) ?? 0)
        if fatSize16 == 0 {
            return FileSystemInfo(type: "fat32", label: cString(s, 71, 11)?.trimmingTrailingSpaces, uuid: serialText(s.littleEndian(UInt32.self, at: 67) ?? 0))
        }
        let rootSectors = (rootEntries * 32 + bps - 1) / bps
        let total = total16 != 0 ? total16 : total32
        let data = total > reserved + fats * fatSize16 + rootSectors ? total - reserved - fats * fatSize16 - rootSectors : 0
        let clusters = spc > 0 ? data / spc : 0
        return FileSystemInfo(
            type: clusters < 4085 ? "fat12" : "fat16", label: cString(s, 43, 11)?.trimmingTrailingSpaces,
            uuid: serialText(s.littleEndian(UInt32.self, at: 39) ?? 0))
    }

    /// ext2/3/4 from the superblock at 1024: ext4 if extents/64bit/flex_bg, ext3 if it has a journal.
    static func ext(_ s: [UInt8]) -> FileSystemInfo {
        let sb = 1024
        let compat = s.littleEndian(UInt32.self, at: sb + 92) ?? 0
        let incompat = s.littleEndian(UInt32.self, at: sb + 96) ?? 0
        let type = incompat & (0x40 | 0x80 | 0x200) != 0 ? "ext4" : (compat & 0x4 != 0 ? "ext3" : "ext2")
        return FileSystemInfo(type: type, label: cString(s, sb + 120, 16), uuid: uuid(s, sb + 104))
    }

    static func cString(_ s: [UInt8], _ at: Int, _ count: Int) -> String? {
        guard at + count <= s.count else { return nil }
        let bytes = s[at..<at + count].prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A big-endian 16-byte UUID as 8-4-4-4-12 text.
    static func uuid(_ s: [UInt8], _ at: Int) -> String? {
        guard at + 16 <= s.count else { return nil }
        let hex = Array(s[at..<at + 16]).hexString
        guard hex != String(repeating: "0", count: 32) else { return nil }
        let c = Array(hex)
        return [c[0..<8], c[8..<12], c[12..<16], c[16..<20], c[20..<32]].map { String($0) }.joined(separator: "-")
    }

    /// FAT/exFAT volume serials print as XXXX-XXXX.
    static func serialText(_ serial: UInt32) -> String {
        let hex = String(serial, radix: 16, uppercase: true).leftPadded(8)
        return String(hex.prefix(4)) + "-" + String(hex.suffix(4))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
    var trimmingTrailingSpaces: String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// An LVM id as `pvs` and blkid print it: its 32 characters in groups of 6-4-4-4-4-4-6.
func lvmUUID(_ raw: String) -> String {
    let chars = Array(raw)
    guard chars.count == 32 else { return raw }
    var out = ""
    var at = 0
    for (i, n) in [6, 4, 4, 4, 4, 4, 6].enumerated() {
        if i > 0 { out += "-" }
        out += String(chars[at..<at + n])
        at += n
    }
    return out
}
