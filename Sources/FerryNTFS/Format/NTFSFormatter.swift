public import FerryDisk
import FerryBinary

/// Writes a new NTFS 3.1 volume holding a small tree of files: ferry's own formatter, so the
/// demo's sample guest and tests need neither mkntfs nor a FUSE mount. What it writes is what
/// mkntfs writes for a small volume, checked by ntfs-3g (`ntfsfix -n`, `ntfsinfo`, `ntfscat`, a
/// FUSE mount) in the tests:
///
/// - the boot sector at sector 0 and its backup in the sector after the last cluster's sectors;
/// - the sixteen system files (records 0–15: $MFT, $MFTMirr, $LogFile emptied to 0xFF, $Volume,
///   $AttrDef, the root directory, $Bitmap, $Boot, $BadClus, $Secure, $UpCase, $Extend, 12–15
///   reserved), records 16–23 left free for $MFT's own growth, user files from record 24;
/// - every file's data non-resident (as a registry hive always is), every directory's $I30
///   index in its $INDEX_ROOT when it fits and in 4 KiB INDX blocks when it does not.
///
/// Clusters are 4 KiB, MFT records 1 KiB, sectors 512 bytes. Only the clusters in use are
/// written, so a large volume on a sparse file stays sparse.
public struct NTFSFormatter: Sendable {
    public var label: String
    /// The partition's first sector on its disk (the boot sector's "hidden sectors").
    public var hiddenSectors: UInt32
    public var heads: UInt16 = 255
    public var sectorsPerTrack: UInt16 = 63
    public var serialNumber: UInt64 = 0x4645_5252_5944_454D
    /// Every timestamp (100 ns units since 1601): fixed, so the same tree gives the same bytes.
    public var time: UInt64 = 127_000_000_000_000_000

    public init(label: String, hiddenSectors: UInt32) {
        self.label = label
        self.hiddenSectors = hiddenSectors
    }

    public static let clusterSize = 4096
    static let recordSize = 1024
    static let sectorSize = 512
    /// The first record a user file gets (16–23 are kept free for $MFT's extension records).
    static let firstUserRecord = 24

    /// Formats `sectors` sectors of `device` starting at byte `offset` (the partition) and
    /// writes `files` (paths with "/", relative to the root; directories are made as needed).
    public func format(_ device: any BlockDevice, at offset: UInt64, sectors: UInt64, files: [String: [UInt8]]) throws {
        guard sectors >= 8192 else {
            throw FormatError(.outOfRange, structure: "NTFS format", field: "size", "\(sectors) sectors is below the 4 MiB this formatter needs")
        }
        try device.checkRange(offset, sectors * UInt64(Self.sectorSize), operation: "format")
        var layout = try Layout(sectors: sectors, tree: FileTree(files))
        let image = try build(&layout)
        for (lcn, bytes) in image.clusters {
            try bytes.withUnsafeBytes { try device.write($0, at: offset + lcn * UInt64(Self.clusterSize)) }
        }
        let boot = bootSector(layout)
        try boot.withUnsafeBytes { try device.write($0, at: offset + layout.totalSectors * UInt64(Self.sectorSize)) }
        try device.flush()
    }

    /// The clusters to write, by LCN, each `clusterSize` bytes or more (a contiguous run).
    struct Image {
        var clusters: [(UInt64, [UInt8])] = []
    }

    /// Lays the system files and the tree out, then encodes every record, index and stream.
    func build(_ layout: inout Layout) throws -> Image {
        var image = Image()
        var records = [[UInt8]](repeating: [], count: layout.mftRecords)
        for number in 0..<layout.mftRecords { records[number] = try unusedRecord(number) }
        for file in layout.files {
            records[file.record] = try encodeRecord(file, layout: layout)
        }
        let mft = records.flatMap { $0 }
        image.clusters.append((layout.mftLCN, mft))
        image.clusters.append((layout.mirrorLCN, Array(mft.prefix(Self.clusterSize))))
        image.clusters.append((0, bootSector(layout) + [UInt8](repeating: 0, count: 2 * Self.clusterSize - Self.sectorSize)))
        for file in layout.files {
            for (lcn, bytes) in try contentClusters(file, layout: layout) { image.clusters.append((lcn, bytes)) }
        }
        return image
    }

    /// The boot sector (formats §6.2): a jump, "NTFS    ", the BIOS parameter block with the
    /// FAT fields zero (ntfs-3g's `ntfs_boot_sector_is_ntfs` checks them), the geometry old
    /// Windows boots by, the $MFT and $MFTMirr clusters, 1 KiB records, 4 KiB index blocks.
    func bootSector(_ layout: Layout) -> [UInt8] {
        var w = ByteWriter(capacity: Self.sectorSize)
        w.write(bytes: [0xEB, 0x52, 0x90])
        w.write(bytes: Array("NTFS    ".utf8))
        w.writeLittleEndian(UInt16(Self.sectorSize))
        w.write(UInt8(Self.clusterSize / Self.sectorSize))
        w.writeZeros(7)  // reserved sectors, FATs, root entries, small sector count
        w.write(0xF8)  // media: fixed disk
        w.writeZeros(2)  // sectors per FAT
        w.writeLittleEndian(sectorsPerTrack)
        w.writeLittleEndian(heads)
        w.writeLittleEndian(hiddenSectors)
        w.writeZeros(4)  // large sector count (FAT only)
        w.write(bytes: [0x80, 0x00, 0x80, 0x00])  // drive 0x80, extended boot signature as Windows writes it
        w.writeLittleEndian(layout.totalSectors)
        w.writeLittleEndian(layout.mftLCN)
        w.writeLittleEndian(layout.mirrorLCN)
        w.write(UInt8(bitPattern: -10))  // MFT record: 2^10 bytes
        w.writeZeros(3)
        w.write(1)  // index block: one cluster
        w.writeZeros(3)
        w.writeLittleEndian(serialNumber)
        w.writeZeros(4)  // checksum (unused)
        w.writeZeros(Self.sectorSize - 2 - w.bytes.count)
        w.write(bytes: [0x55, 0xAA])
        return w.bytes
    }
}
