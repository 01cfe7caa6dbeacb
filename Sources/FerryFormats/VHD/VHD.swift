import FerryBinary

/// VHD, the Virtual PC / Hyper-V format (Microsoft "Virtual Hard Disk Image Format
/// Specification" v1.0). All integers are big-endian.
///
/// ```
///  fixed:        [ disk data ........................ ][ footer 512 ]
///  dynamic/diff: [ footer copy ][ dynamic header 1024 ][ BAT ][ block ]…[ footer ]
///  block:        [ sector bitmap, MSB first, padded to 512 ][ blockSize bytes of data ]
///  BAT[n]:       u32 sector of block n, 0xFFFFFFFF = not allocated
///  differencing: bitmap bit 1 = sector stored here, 0 = read the parent
/// ```
public enum VHD {
    enum DiskType: UInt32, Sendable { case fixed = 2, dynamic = 3, differencing = 4 }
    static let unallocated: UInt32 = 0xffff_ffff

    /// The footer (spec "Hard Disk Footer Format").
    ///
    /// | Off | Size | Field | | Off | Size | Field |
    /// |---:|---:|---|---|---:|---:|---|
    /// | 0 | 8 | cookie "conectix" | | 40 | 8 | original size |
    /// | 8 | 4 | features | | 48 | 8 | current size |
    /// | 12 | 4 | format version | | 56 | 4 | geometry C/H/S |
    /// | 16 | 8 | data offset | | 60 | 4 | disk type |
    /// | 24 | 4 | timestamp | | 64 | 4 | checksum |
    /// | 28 | 4 | creator application | | 68 | 16 | unique id |
    /// | 32 | 4 | creator version | | 84 | 1 | saved state |
    /// | 36 | 4 | creator host OS | | | | |
    struct Footer: Sendable, Equatable {
        var dataOffset: UInt64
        var creator: [UInt8]
        var currentSize: UInt64
        var cylinders: UInt16
        var heads: UInt8
        var sectorsPerTrack: UInt8
        var diskType: DiskType
        var uniqueID: [UInt8]

        static let structure = "VHD footer"

        init(parsing bytes: [UInt8], baseOffset: UInt64) throws {
            let s = Self.structure
            var r = ByteReader(bytes, structure: s, baseOffset: baseOffset)
            guard try r.readBytes(8, field: "cookie") == Array("conectix".utf8) else {
                throw FormatError(.badMagic, structure: s, field: "cookie", offset: baseOffset, "expected conectix")
            }
            guard VHD.checksum(bytes, skipping: 64) == bytes.bigEndian(UInt32.self, at: 64) else {
                throw FormatError(.badChecksum, structure: s, field: "checksum", offset: baseOffset + 64,
                                  "the footer checksum does not match its contents")
            }
            try r.seek(to: 16)
            dataOffset = try r.readBigEndian(UInt64.self, "data offset")
            try r.skip(4)
            creator = try r.readBytes(4, field: "creator application")
            try r.skip(16)
            currentSize = try r.readBigEndian(UInt64.self, "current size")
            cylinders = try r.readBigEndian(UInt16.self, "cylinders")
            heads = try r.readUInt8("heads")
            sectorsPerTrack = try r.readUInt8("sectors per track")
            let type = try r.readBigEndian(UInt32.self, "disk type")
            guard let diskType = DiskType(rawValue: type) else {
                throw FormatError(.unsupportedFeature, structure: s, field: "disk type", offset: baseOffset + 60,
                                  "disk type \(type) is not fixed (2), dynamic (3) or differencing (4)")
            }
            self.diskType = diskType
            try r.skip(4)
            uniqueID = try r.readBytes(16, field: "unique id")
        }

        /// The virtual size, as qemu's vpc driver decides it: Virtual PC and qemu
        /// ("vpc ", "qemu") size disks by CHS geometry; Hyper-V, disk2vhd, XenServer,
        /// qemu with force_size ("qem2") and Azure use current_size; so does the
        /// 65535/16/255 geometry sentinel.
        var virtualSize: UInt64 {
            let chs = UInt64(cylinders) * UInt64(heads) * UInt64(sectorsPerTrack) * 512
            let byCHS = creator == Array("vpc ".utf8) || creator == Array("qemu".utf8)
            if !byCHS || chs == 65535 * 16 * 255 * 512 { return currentSize }
            return chs
        }
    }

    /// One's complement of the byte sum, with the 4-byte checksum field treated as zero.
    static func checksum(_ bytes: [UInt8], skipping field: Int) -> UInt32 {
        var sum: UInt32 = 0
        for (i, b) in bytes.enumerated() where i < field || i >= field + 4 { sum &+= UInt32(b) }
        return ~sum
    }
}
