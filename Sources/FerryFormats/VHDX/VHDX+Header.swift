import FerryBinary

extension VHDX {
    /// A header ([MS-VHDX] 2.2.2), at 64 KiB or 128 KiB; the valid one with the
    /// higher sequence number is current.
    ///
    /// | Off | Size | Field |
    /// |---:|---:|---|
    /// | 0 | 4 | signature "head" |
    /// | 4 | 4 | CRC-32C over 4 KiB |
    /// | 8 | 8 | sequence number |
    /// | 16 | 16 | file write GUID |
    /// | 32 | 16 | data write GUID |
    /// | 48 | 16 | log GUID (zero = no log to replay) |
    /// | 64 | 2 | log version |
    /// | 66 | 2 | version (1) |
    /// | 68 | 4 | log length |
    /// | 72 | 8 | log offset |
    struct Header: Sendable, Equatable {
        var sequence: UInt64
        var dataWriteGUID: [UInt8]
        var logGUID: [UInt8]
        /// Where this header sits (64 KiB or 128 KiB).
        var offset: UInt64
        var logLength: UInt32 = 0
        var logOffset: UInt64 = 0

        init(parsing bytes: [UInt8], baseOffset: UInt64) throws {
            let s = VHDX.headerStructure
            offset = baseOffset
            var r = ByteReader(bytes, structure: s, baseOffset: baseOffset)
            guard try r.readBytes(4, field: "signature") == Array("head".utf8) else {
                throw FormatError(.badMagic, structure: s, field: "signature", offset: baseOffset, "expected head")
            }
            guard try r.readLittleEndian(UInt32.self, "checksum") == VHDX.crc32c(bytes, zeroing: 4) else {
                throw FormatError(.badChecksum, structure: s, field: "checksum", offset: baseOffset + 4, "CRC-32C mismatch")
            }
            sequence = try r.readLittleEndian(UInt64.self, "sequence number")
            try r.skip(16)
            dataWriteGUID = try r.readBytes(16, field: "data write GUID")
            logGUID = try r.readBytes(16, field: "log GUID")
            try r.skip(2)
            let version = try r.readLittleEndian(UInt16.self, "version")
            guard version == 1 else {
                throw FormatError(.unsupportedVersion, structure: s, field: "version", offset: baseOffset + 66, "version \(version) is not 1")
            }
            logLength = try r.readLittleEndian(UInt32.self, "log length")
            logOffset = try r.readLittleEndian(UInt64.self, "log offset")
        }
    }

    /// A region table ([MS-VHDX] 2.2.3): where the BAT and the metadata live.
    struct RegionTable: Sendable, Equatable {
        struct Entry: Sendable, Equatable {
            var guid: [UInt8]
            var offset: UInt64
            var length: UInt32
            var required: Bool
        }
        var entries: [Entry] = []

        init(parsing bytes: [UInt8], baseOffset: UInt64) throws {
            let s = VHDX.regionStructure
            var r = ByteReader(bytes, structure: s, baseOffset: baseOffset)
            guard try r.readBytes(4, field: "signature") == Array("regi".utf8) else {
                throw FormatError(.badMagic, structure: s, field: "signature", offset: baseOffset, "expected regi")
            }
            guard try r.readLittleEndian(UInt32.self, "checksum") == VHDX.crc32c(bytes, zeroing: 4) else {
                throw FormatError(.badChecksum, structure: s, field: "checksum", offset: baseOffset + 4, "CRC-32C mismatch")
            }
            let count = try r.readLittleEndian(UInt32.self, "entry count")
            guard count <= 2047 else {
                throw FormatError(.outOfRange, structure: s, field: "entry count", offset: baseOffset + 8, "\(count) entries exceed 2047")
            }
            try r.skip(4)
            for _ in 0..<count {
                let guid = try r.readBytes(16, field: "GUID")
                let offset = try r.readLittleEndian(UInt64.self, "file offset")
                let length = try r.readLittleEndian(UInt32.self, "length")
                let required = try r.readLittleEndian(UInt32.self, "required") & 1 != 0
                entries.append(Entry(guid: guid, offset: offset, length: length, required: required))
            }
        }
    }
}
