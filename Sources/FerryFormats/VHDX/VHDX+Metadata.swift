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
        /// Parent locator key/value pairs (differencing disks): parent_linkage,
        /// relative_path, volume_path, absolute_win32_path.
        var parentLocator: [String: String] = [:]

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
                case Item.parentLocator:
                    parentLocator = try Self.parseLocator(Array(region[offset..<offset + length]), baseOffset: baseOffset + UInt64(offset))
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

        /// Parent locator ([MS-VHDX] 2.6.2.6): type GUID @0, reserved u16 @16, key/value
        /// count u16 @18, entries of {u32 key offset, u32 value offset, u16 key length,
        /// u16 value length} from @20; offsets relative to the item, strings UTF-16LE.
        static func parseLocator(_ item: [UInt8], baseOffset: UInt64) throws -> [String: String] {
            var r = ByteReader(item, structure: "VHDX parent locator", baseOffset: baseOffset)
            try r.skip(18)
            let count = try r.readLittleEndian(UInt16.self, "key value count")
            var result: [String: String] = [:]
            func text(_ offset: UInt32, _ length: UInt16) throws -> String {
                let start = Int(offset)
                guard start <= item.count, Int(length) <= item.count - start else {
                    throw FormatError(.outOfRange, structure: "VHDX parent locator", offset: baseOffset + UInt64(offset),
                                      "a string of \(length) bytes lies outside the locator")
                }
                var units: [UInt16] = []
                for i in stride(from: start, to: start + Int(length) - 1, by: 2) { units.append(UInt16(item[i]) | UInt16(item[i + 1]) << 8) }
                return String(decoding: units, as: UTF16.self)
            }
            for _ in 0..<count {
                let keyOffset = try r.readLittleEndian(UInt32.self, "key offset")
                let valueOffset = try r.readLittleEndian(UInt32.self, "value offset")
                let keyLength = try r.readLittleEndian(UInt16.self, "key length")
                let valueLength = try r.readLittleEndian(UInt16.self, "value length")
                result[try text(keyOffset, keyLength)] = try text(valueOffset, valueLength)
            }
            return result
        }
    }
}
