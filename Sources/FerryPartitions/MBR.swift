public import FerryBinary

/// One 16-byte MBR partition entry (IBM PC MBR; see docs formats §5.2).
///
/// ```
///  +0 status (0x80 active, 0x00 inactive)   +4 type
///  +1 CHS first (3 bytes)                   +5 CHS last (3 bytes)
///  +8 u32le start LBA                       +12 u32le sector count
/// ```
/// In an EBR the start is relative to that EBR (entry 1) or to the first extended
/// partition (entry 2, the link).
public struct MBREntry: Sendable, Equatable {
    public var status: UInt8
    public var chsFirst: [UInt8]
    public var type: UInt8
    public var chsLast: [UInt8]
    public var startLBA: UInt32
    public var sectorCount: UInt32

    public init(parsing reader: inout ByteReader) throws {
        status = try reader.readUInt8("status")
        chsFirst = try reader.readBytes(3, field: "CHS first")
        type = try reader.readUInt8("type")
        chsLast = try reader.readBytes(3, field: "CHS last")
        startLBA = try reader.readLittleEndian(UInt32.self, "start LBA")
        sectorCount = try reader.readLittleEndian(UInt32.self, "sector count")
    }

    public func write(to writer: inout ByteWriter) {
        writer.write(status)
        writer.write(bytes: chsFirst.count == 3 ? chsFirst : [0xFE, 0xFF, 0xFF])
        writer.write(type)
        writer.write(bytes: chsLast.count == 3 ? chsLast : [0xFE, 0xFF, 0xFF])
        writer.writeLittleEndian(startLBA)
        writer.writeLittleEndian(sectorCount)
    }

    public var isEmpty: Bool { type == 0 || sectorCount == 0 }
    public var isBootable: Bool { status == 0x80 }
    /// 0x05 (CHS), 0x0F (LBA) and 0x85 (Linux) chain EBRs.
    public var isExtended: Bool { type == 0x05 || type == 0x0F || type == 0x85 }
}

/// Sector 0 of a BIOS disk: 440 bytes of boot code, the disk signature Windows keys
/// MountedDevices on, four entries and `55 AA`.
///
/// ```
///  0   boot code (440)   440 disk signature u32le   444 reserved u16
///  446 4 × MBREntry      510 55 AA
/// ```
public struct MasterBootRecord: Sendable, Equatable {
    public var bootCode: [UInt8]
    public var diskSignature: UInt32
    public var entries: [MBREntry]

    public init(parsing bytes: [UInt8], offset: UInt64 = 0) throws {
        var reader = ByteReader(bytes, structure: "MBR", baseOffset: offset)
        guard bytes.count >= 512 else {
            throw FormatError(.truncated, structure: "MBR", offset: offset, "needs 512 bytes, got \(bytes.count)")
        }
        guard bytes[510] == 0x55, bytes[511] == 0xAA else {
            throw FormatError(.badMagic, structure: "MBR", field: "boot signature", offset: offset + 510, "no 55 AA")
        }
        bootCode = try reader.readBytes(440, field: "boot code")
        diskSignature = try reader.readLittleEndian(UInt32.self, "disk signature")
        try reader.skip(2)
        entries = try (0..<4).map { _ in try MBREntry(parsing: &reader) }
    }

    public func write(to writer: inout ByteWriter) {
        var code = bootCode
        code += [UInt8](repeating: 0, count: max(0, 440 - code.count))
        writer.write(bytes: code.prefix(440))
        writer.writeLittleEndian(diskSignature)
        writer.writeLittleEndian(UInt16(0))
        for entry in entries.prefix(4) { entry.write(to: &writer) }
        writer.write(0x55)
        writer.write(0xAA)
    }

    /// True when the first 440 bytes are not all zero: something a BIOS can run.
    public var hasBootCode: Bool { bootCode.contains { $0 != 0 } }

    /// A GPT protective MBR has a 0xEE entry.
    public var isProtective: Bool { entries.contains { $0.type == 0xEE } }

    /// Status bytes other than 0x00/0x80 mean this sector is not an MBR (often a VBR).
    public var hasValidStatusBytes: Bool { entries.allSatisfy { $0.status == 0 || $0.status == 0x80 } }
}

/// Names of common MBR partition type bytes.
public enum MBRPartitionType {
    public static func name(_ type: UInt8) -> String {
        switch type {
        case 0x01: return "FAT12"
        case 0x04, 0x06, 0x0E: return "FAT16"
        case 0x05, 0x0F: return "extended"
        case 0x07: return "NTFS/exFAT"
        case 0x0B, 0x0C: return "FAT32"
        case 0x12: return "OEM/recovery"
        case 0x17: return "hidden NTFS"
        case 0x27: return "Windows RE"
        case 0x42: return "LDM (dynamic disk)"
        case 0x82: return "Linux swap"
        case 0x83: return "Linux"
        case 0x85: return "Linux extended"
        case 0x8E: return "Linux LVM"
        case 0xA5: return "FreeBSD"
        case 0xEE: return "GPT protective"
        case 0xEF: return "EFI system"
        case 0xFD: return "Linux RAID"
        default: return String(format16: type)
        }
    }
}

extension String {
    init(format16 byte: UInt8) { self = "0x" + [byte].hexString }
}
