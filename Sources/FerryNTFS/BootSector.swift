import FerryBinary

/// The NTFS boot sector (VBR) at volume offset 0 (libfsntfs "NTFS volume header";
/// formats §6.2).
///
/// ```
///  0 jump (3)   3 OEM "NTFS    "   11 bytes/sector u16   13 sectors/cluster u8 (≥244: 2^(256−n))
///  21 media     24 sectors/track u16   26 heads u16   28 hidden sectors u32 (partition start)
///  40 total sectors u64   48 $MFT LCN u64   56 $MFTMirr LCN u64
///  64 clusters per MFT record i8 (negative n: 2^−n bytes)   68 clusters per index block i8
///  72 serial u64   510 55 AA
/// ```
public struct NTFSBootSector: Sendable, Equatable {
    public static let oemID: [UInt8] = Array("NTFS    ".utf8)
    /// BitLocker replaces the OEM id of the volumes it encrypts.
    public static let bitLockerID: [UInt8] = Array("-FVE-FS-".utf8)

    /// True for a BitLocker-encrypted volume's boot sector: NTFS underneath, unreadable offline.
    public static func isBitLocker(_ sector: [UInt8]) -> Bool {
        sector.count >= 11 && Array(sector[3..<11]) == bitLockerID
    }
    /// Cluster sizes above 2 MiB do not exist (Windows 10 1709 tops out at 2 MiB).
    public static let maxClusterSize = 2 << 20

    public var bytesPerSector: UInt16
    public var sectorsPerClusterField: UInt8
    public var sectorsPerTrack: UInt16
    public var heads: UInt16
    public var hiddenSectors: UInt32
    public var totalSectors: UInt64
    public var mftCluster: UInt64
    public var mftMirrorCluster: UInt64
    public var clustersPerRecordField: Int8
    public var clustersPerIndexBlockField: Int8
    public var serialNumber: UInt64

    public init(parsing bytes: [UInt8], offset: UInt64 = 0) throws {
        var r = ByteReader(bytes, structure: "NTFS boot sector", baseOffset: offset)
        try r.skip(3)
        let oem = try r.readBytes(8, field: "OEM identifier")
        guard oem == Self.oemID else {
            let why = oem == Self.bitLockerID ? "the volume is BitLocker-encrypted (\"-FVE-FS-\")" : "not \"NTFS    \""
            throw FormatError(oem == Self.bitLockerID ? .unsupportedFeature : .badMagic, structure: "NTFS boot sector",
                field: "OEM identifier", offset: offset + 3, why)
        }
        bytesPerSector = try r.readLittleEndian(UInt16.self, "bytes per sector")
        sectorsPerClusterField = try r.readUInt8("sectors per cluster")
        try r.seek(to: 24)
        sectorsPerTrack = try r.readLittleEndian(UInt16.self, "sectors per track")
        heads = try r.readLittleEndian(UInt16.self, "number of heads")
        hiddenSectors = try r.readLittleEndian(UInt32.self, "hidden sectors")
        try r.seek(to: 40)
        totalSectors = try r.readLittleEndian(UInt64.self, "total sectors")
        mftCluster = try r.readLittleEndian(UInt64.self, "MFT cluster")
        mftMirrorCluster = try r.readLittleEndian(UInt64.self, "MFT mirror cluster")
        clustersPerRecordField = Int8(bitPattern: try r.readUInt8("clusters per MFT record"))
        try r.skip(3)
        clustersPerIndexBlockField = Int8(bitPattern: try r.readUInt8("clusters per index block"))
        try r.skip(3)
        serialNumber = try r.readLittleEndian(UInt64.self, "serial number")

        guard [512, 1024, 2048, 4096].contains(bytesPerSector) else {
            throw FormatError(.outOfRange, structure: "NTFS boot sector", field: "bytes per sector", offset: offset + 11,
                "\(bytesPerSector) is not 512, 1024, 2048 or 4096")
        }
        guard clusterSize <= Self.maxClusterSize, clusterSize >= Int(bytesPerSector) else {
            throw FormatError(.outOfRange, structure: "NTFS boot sector", field: "sectors per cluster", offset: offset + 13,
                "cluster size \(clusterSize) is not within \(bytesPerSector)…\(Self.maxClusterSize)")
        }
        guard let recordSize = Self.decodeSize(clustersPerRecordField, clusterSize: clusterSize), recordSize >= 512, recordSize <= 65536 else {
            throw FormatError(.outOfRange, structure: "NTFS boot sector", field: "clusters per MFT record", offset: offset + 64,
                "MFT record size is not within 512…65536")
        }
        guard let indexSize = Self.decodeSize(clustersPerIndexBlockField, clusterSize: clusterSize), indexSize >= 512, indexSize <= 65536
        else {
            throw FormatError(.outOfRange, structure: "NTFS boot sector", field: "clusters per index block", offset: offset + 68,
                "index block size is not within 512…65536")
        }
        _ = recordSize
        _ = indexSize
    }

    /// Bytes per cluster; the 244–255 encoding means 2^(256−n) sectors.
    public var clusterSize: Int {
        let spc = sectorsPerClusterField <= 128 ? Int(sectorsPerClusterField) : (sectorsPerClusterField >= 244 ? 1 << (256 - Int(sectorsPerClusterField)) : 0)
        return spc * Int(bytesPerSector)
    }

    /// Bytes per MFT record (1024 usually, 4096 on 4Kn volumes).
    public var recordSize: Int { Self.decodeSize(clustersPerRecordField, clusterSize: clusterSize) ?? 1024 }
    public var indexBlockSize: Int { Self.decodeSize(clustersPerIndexBlockField, clusterSize: clusterSize) ?? 4096 }

    /// Positive: that many clusters; negative n: 2^−n bytes.
    static func decodeSize(_ field: Int8, clusterSize: Int) -> Int? {
        if field > 0 { return Int(field) * clusterSize }
        let shift = -Int(field)
        guard shift > 0, shift < 31 else { return nil }
        return 1 << shift
    }

    /// Saturates instead of wrapping, so a hostile sector count fails the fits-the-disk check.
    public var volumeSize: UInt64 {
        let (bytes, overflow) = totalSectors.multipliedReportingOverflow(by: UInt64(bytesPerSector))
        return overflow ? .max : bytes
    }
    public var totalClusters: UInt64 { volumeSize / UInt64(clusterSize) }
}
