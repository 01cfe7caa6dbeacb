import FerryBinary

extension VHDX {
    /// The metadata items ferry needs ([MS-VHDX] 2.6): block size, flags, virtual
    /// size and logical sector size. Unknown items marked required are refused.
    ///
    /// Table header: "metadata" @0, reserved u16 @8, entry count u16 @10; entries of
    /// 32 bytes from @32: item GUID, u32 offset (from the region start), u32 length,
    /// u32 flags (bit 2 IsRequired), reserved.
    struct Metadata: Sendable, Equatable {
        var blockSize: UInt32 = 0
        var hasParent = false
        var virtualSize: UInt64 = 0
        var logicalSectorSize: UInt32 = 512

        static let structure = "VHDX metadata"

        init(parsing region: [UInt8], baseOffset: UInt64) throws {
            let s = Self.structure
            var r = ByteReader(region, structure: s, baseOffset: baseOffset)
            guard try r.readBytes(8, field: "signature") == Array("metadata".utf8) else {
                throw FormatError(.badMagic, structure: s, field: "signature", offset: baseOffset, "expected metadata")
            }
            try r.skip(2)
            let count = try r.readLittleEndian(UInt16.self, "entry count")
            guard count <= 2047 else {
                throw FormatError(.outOfRange, structure: s, field: "entry count", offset: baseOffset + 10, "\(count) entries exceed 2047")
            }
            try r.seek(to: 32)
            var seen: Set<[UInt8]> = []
            let known = [Item.physicalSectorSize, Item.page83, Item.parentLocator]
            for index in 0..<Int(count) {
                let guid = try r.readBytes(16, field: "item GUID")
                let offset = Int(try r.readLittleEndian(UInt32.self, "item offset"))
                let length = Int(try r.readLittleEndian(UInt32.self, "item length"))
                let flags = try r.readLittleEndian(UInt32.self, "item flags")
                try r.skip(4)
                guard offset >= 0, length >= 0, offset <= region.count, length <= region.count - offset else {
                    throw FormatError(.outOfRange, structure: s, field: "entry \(index)", offset: baseOffset + UInt64(32 + index * 32),
                                      "item of \(length) bytes at \(offset) lies outside the metadata region")
                }
                var item = ByteReader(Array(region[offset..<offset + length]), structure: s, baseOffset: baseOffset + UInt64(offset))
                seen.insert(guid)
                switch guid {
                case Item.fileParameters:
                    blockSize = try item.readLittleEndian(UInt32.self, "block size")
                    hasParent = try item.readLittleEndian(UInt32.self, "file parameter flags") & 2 != 0
                case Item.virtualDiskSize:
                    virtualSize = try item.readLittleEndian(UInt64.self, "virtual disk size")
                case Item.logicalSectorSize:
                    logicalSectorSize = try item.readLittleEndian(UInt32.self, "logical sector size")
                default:
                    if flags & 4 != 0 && !known.contains(guid) {
                        throw FormatError(.unsupportedFeature, structure: s, field: "entry \(index)",
                                          offset: baseOffset + UInt64(32 + index * 32),
                                          "unknown required metadata item \(guid.hexString)")
                    }
                }
            }
            guard seen.contains(Item.fileParameters), seen.contains(Item.virtualDiskSize) else {
                throw FormatError(.inconsistent, structure: s, offset: baseOffset, "file parameters or virtual disk size missing")
            }
            guard blockSize >= 1 << 20, blockSize <= 256 << 20, blockSize & (blockSize - 1) == 0 else {
                throw FormatError(.outOfRange, structure: s, field: "block size", offset: baseOffset,
                                  "block size \(blockSize) is not a power of two from 1 to 256 MiB")
            }
            guard logicalSectorSize == 512 || logicalSectorSize == 4096 else {
                throw FormatError(.outOfRange, structure: s, field: "logical sector size", offset: baseOffset,
                                  "logical sector size \(logicalSectorSize) is not 512 or 4096")
            }
            guard virtualSize <= 64 << 40 else {
                throw FormatError(.outOfRange, structure: s, field: "virtual disk size", offset: baseOffset,
                                  "virtual size \(virtualSize) exceeds the 64 TiB VHDX maximum")
            }
        }
    }
}
