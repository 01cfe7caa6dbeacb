/// How a partition table was found.
public enum PartitionScheme: String, Sendable, Codable {
    case mbr, gpt
    /// No partition table: the image is a bare volume (or empty/unknown).
    case none
}

/// Where a partition starts relative to the grids that matter: Vista+ tools start at
/// 1 MiB, XP/2003 at LBA 63 (one 255×63 track, formats §5.4); 4 KiB alignment is what
/// modern storage and thin provisioning care about.
public enum PartitionAlignment: String, Sendable, Codable {
    case mebibyte = "1MiB"
    case fourKiB = "4KiB"
    case track = "LBA63"
    case unaligned

    public static func of(startLBA: UInt64, sectorSize: Int) -> PartitionAlignment {
        let bytes = startLBA.multipliedReportingOverflow(by: UInt64(sectorSize))
        if bytes.overflow { return .unaligned }
        if bytes.partialValue % (1 << 20) == 0 { return .mebibyte }
        if bytes.partialValue % 4096 == 0 { return .fourKiB }
        // XP puts primaries at LBA 63 and logicals 63 sectors after a cylinder-aligned EBR.
        if sectorSize == 512, startLBA % 63 == 0 || startLBA % 16065 == 63 { return .track }
        return .unaligned
    }
}

/// One partition as ferry reports it, from an MBR, an EBR chain or a GPT.
public struct Partition: Sendable, Equatable {
    /// Linux-style number: primaries and GPT entries 1…, logical partitions from 5.
    public var index: Int
    public var startLBA: UInt64
    public var sectorCount: UInt64
    public var sectorSize: Int
    /// MBR type byte, for MBR partitions.
    public var mbrType: UInt8?
    /// GPT type GUID, for GPT partitions.
    public var gptType: GUID?
    /// GPT partition name, when set.
    public var name: String?
    /// MBR active flag, or the GPT legacy-BIOS-bootable attribute.
    public var bootable: Bool
    public var isLogical: Bool

    public init(
        index: Int, startLBA: UInt64, sectorCount: UInt64, sectorSize: Int, mbrType: UInt8? = nil,
        gptType: GUID? = nil, name: String? = nil, bootable: Bool = false, isLogical: Bool = false
    ) {
        self.index = index
        self.startLBA = startLBA
        self.sectorCount = sectorCount
        self.sectorSize = sectorSize
        self.mbrType = mbrType
        self.gptType = gptType
        self.name = name
        self.bootable = bootable
        self.isLogical = isLogical
    }

    /// Byte offset on the disk (saturating: hostile values cannot wrap).
    public var start: UInt64 { saturatingBytes(startLBA) }
    public var size: UInt64 { saturatingBytes(sectorCount) }
    public var end: UInt64 { let (r, o) = start.addingReportingOverflow(size); return o ? .max : r }

    public var alignment: PartitionAlignment { .of(startLBA: startLBA, sectorSize: sectorSize) }

    /// "NTFS/exFAT (0x07)" or "Microsoft basic data".
    public var typeName: String {
        if let mbrType { return MBRPartitionType.name(mbrType) }
        if let gptType { return GPTPartitionType.name(gptType) }
        return "unknown"
    }

    /// The type as a short code for machines: "0x07" or the GUID.
    public var typeCode: String {
        if let mbrType { return String(format16: mbrType) }
        return gptType?.description ?? "unknown"
    }

    /// True for LDM (dynamic disk) partitions, which Windows needs its own volume manager to read.
    public var isDynamicDisk: Bool {
        mbrType == 0x42 || gptType?.description == "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3"
            || gptType?.description == "AF9B60A0-1431-4F62-BC68-3311714A69AD"
    }

    private func saturatingBytes(_ sectors: UInt64) -> UInt64 {
        let (r, o) = sectors.multipliedReportingOverflow(by: UInt64(sectorSize))
        return o ? .max : r
    }
}

/// A disk's partition table, with what looked wrong about it.
public struct PartitionTable: Sendable, Equatable {
    public var scheme: PartitionScheme
    public var sectorSize: Int
    public var partitions: [Partition]
    /// MBR disk signature (offset 440), which Windows keys MountedDevices on.
    public var diskSignature: UInt32?
    public var diskGUID: GUID?
    /// The MBR (or protective MBR) carries boot code.
    public var hasBootCode: Bool
    /// Problems noticed that did not stop the reading: bad CRCs, a missing backup header,
    /// a broken EBR chain, partitions past the end.
    public var warnings: [String]

    public init(
        scheme: PartitionScheme, sectorSize: Int, partitions: [Partition] = [], diskSignature: UInt32? = nil,
        diskGUID: GUID? = nil, hasBootCode: Bool = false, warnings: [String] = []
    ) {
        self.scheme = scheme
        self.sectorSize = sectorSize
        self.partitions = partitions
        self.diskSignature = diskSignature
        self.diskGUID = diskGUID
        self.hasBootCode = hasBootCode
        self.warnings = warnings
    }
}
