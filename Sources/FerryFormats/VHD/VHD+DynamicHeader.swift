import FerryBinary

extension VHD {
    /// The dynamic disk header (spec "Dynamic Disk Header Format"), 1024 bytes.
    ///
    /// | Off | Size | Field |
    /// |---:|---:|---|
    /// | 0 | 8 | cookie "cxsparse" |
    /// | 8 | 8 | data offset (unused, all ones) |
    /// | 16 | 8 | table (BAT) offset |
    /// | 24 | 4 | header version |
    /// | 28 | 4 | max table entries |
    /// | 32 | 4 | block size |
    /// | 36 | 4 | checksum |
    /// | 40 | 16 | parent unique id |
    /// | 56 | 4 | parent timestamp |
    /// | 64 | 512 | parent unicode name (UTF-16BE) |
    /// | 576 | 8 × 24 | parent locators {code, data space, data length, reserved, u64 offset} |
    struct DynamicHeader: Sendable, Equatable {
        struct Locator: Sendable, Equatable {
            var code: [UInt8]
            var length: UInt32
            var offset: UInt64
        }
        var tableOffset: UInt64
        var maxTableEntries: UInt32
        var blockSize: UInt32
        var parentUniqueID: [UInt8]
        var parentName: String
        var locators: [Locator]

        static let structure = "VHD dynamic header"

        init(parsing bytes: [UInt8], baseOffset: UInt64) throws {
            let s = Self.structure
            var r = ByteReader(bytes, structure: s, baseOffset: baseOffset)
            guard try r.readBytes(8, field: "cookie") == Array("cxsparse".utf8) else {
                throw FormatError(.badMagic, structure: s, field: "cookie", offset: baseOffset, "expected cxsparse")
            }
            guard VHD.checksum(bytes, skipping: 36) == bytes.bigEndian(UInt32.self, at: 36) else {
                throw FormatError(.badChecksum, structure: s, field: "checksum", offset: baseOffset + 36,
                                  "the dynamic header checksum does not match its contents")
            }
            try r.skip(8)
            tableOffset = try r.readBigEndian(UInt64.self, "table offset")
            try r.skip(4)
            maxTableEntries = try r.readBigEndian(UInt32.self, "max table entries")
            blockSize = try r.readBigEndian(UInt32.self, "block size")
            guard blockSize >= 512, blockSize <= 256 << 20, blockSize & (blockSize - 1) == 0 else {
                throw FormatError(.outOfRange, structure: s, field: "block size", offset: baseOffset + 32,
                                  "block size \(blockSize) is not a power of two from 512 bytes to 256 MiB")
            }
            try r.skip(4)
            parentUniqueID = try r.readBytes(16, field: "parent unique id")
            try r.skip(8)
            let name = try r.readBytes(512, field: "parent unicode name")
            var units: [UInt16] = []
            for i in stride(from: 0, to: name.count, by: 2) {
                let u = UInt16(name[i]) << 8 | UInt16(name[i + 1])
                if u == 0 { break }
                units.append(u)
            }
            parentName = String(decoding: units, as: UTF16.self)
            locators = []
            for _ in 0..<8 {
                let code = try r.readBytes(4, field: "locator code")
                _ = try r.readBigEndian(UInt32.self, "locator data space")
                let length = try r.readBigEndian(UInt32.self, "locator data length")
                try r.skip(4)
                let offset = try r.readBigEndian(UInt64.self, "locator offset")
                if code != [0, 0, 0, 0] { locators.append(Locator(code: code, length: length, offset: offset)) }
            }
        }
    }
}
