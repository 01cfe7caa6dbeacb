import FerryBinary

extension VMDK {
    /// The hosted sparse extent header, sector 0 of a "KDMV" file (technote §"Hosted
    /// Sparse Extent Header"); also the stream-optimized footer.
    ///
    /// | Off | Size | Field | | Off | Size | Field |
    /// |---:|---:|---|---|---:|---:|---|
    /// | 0 | 4 | magic "KDMV" | | 48 | 8 | rgdOffset (sectors) |
    /// | 4 | 4 | version (1–3) | | 56 | 8 | gdOffset (sectors; ~0 = at end) |
    /// | 8 | 4 | flags | | 64 | 8 | overHead (sectors) |
    /// | 12 | 8 | capacity (sectors) | | 72 | 1 | uncleanShutdown |
    /// | 20 | 8 | grainSize (sectors) | | 73 | 4 | "\n \r\n" |
    /// | 28 | 8 | descriptorOffset | | 77 | 2 | compressAlgorithm |
    /// | 36 | 8 | descriptorSize | | | | |
    /// | 44 | 4 | numGTEsPerGT | | | | |
    struct SparseHeader: Sendable, Equatable {
        var version: UInt32
        var flags: UInt32
        var capacity: UInt64
        var grainSize: UInt64
        var descriptorOffset: UInt64
        var descriptorSize: UInt64
        var numGTEsPerGT: UInt32
        var rgdOffset: UInt64
        var gdOffset: UInt64
        var compressAlgorithm: UInt16

        static let structure = "VMDK sparse header"
        enum Flags {
            static let redundantGD: UInt32 = 1 << 1
            static let zeroedGrainGTE: UInt32 = 1 << 2
            static let compressed: UInt32 = 1 << 16
            static let markers: UInt32 = 1 << 17
        }

        var compressed: Bool { flags & Flags.compressed != 0 }
        var hasZeroedGrains: Bool { flags & Flags.zeroedGrainGTE != 0 }
        var grainBytes: UInt64 { grainSize * VMDK.sectorSize }

        init(parsing bytes: [UInt8], baseOffset: UInt64 = 0) throws {
            var r = ByteReader(bytes, structure: Self.structure, baseOffset: baseOffset)
            let s = Self.structure
            let magic = try r.readLittleEndian(UInt32.self, "magic")
            guard magic == VMDK.sparseMagic else {
                throw FormatError(.badMagic, structure: s, field: "magic", offset: baseOffset, "expected KDMV")
            }
            version = try r.readLittleEndian(UInt32.self, "version")
            guard (1...3).contains(version) else {
                throw FormatError(.unsupportedVersion, structure: s, field: "version", offset: baseOffset + 4,
                                  "sparse extent version \(version) is not 1, 2 or 3")
            }
            flags = try r.readLittleEndian(UInt32.self, "flags")
            capacity = try r.readLittleEndian(UInt64.self, "capacity")
            grainSize = try r.readLittleEndian(UInt64.self, "grainSize")
            descriptorOffset = try r.readLittleEndian(UInt64.self, "descriptorOffset")
            descriptorSize = try r.readLittleEndian(UInt64.self, "descriptorSize")
            numGTEsPerGT = try r.readLittleEndian(UInt32.self, "numGTEsPerGT")
            rgdOffset = try r.readLittleEndian(UInt64.self, "rgdOffset")
            gdOffset = try r.readLittleEndian(UInt64.self, "gdOffset")
            _ = try r.readLittleEndian(UInt64.self, "overHead")
            _ = try r.readUInt8("uncleanShutdown")
            try r.skip(4, field: "newline test")
            compressAlgorithm = try r.readLittleEndian(UInt16.self, "compressAlgorithm")
            // qemu rejects grains over 1 GiB; compressed grains are inflated in memory, so
            // they get the tighter 2 MiB bound.
            let maxGrain: UInt64 = compressed ? UInt64(FormatLimits.maxCompressedUnit) / VMDK.sectorSize : 1 << 21
            guard grainSize >= 1, grainSize <= maxGrain, grainSize & (grainSize - 1) == 0 else {
                throw FormatError(.outOfRange, structure: s, field: "grainSize", offset: baseOffset + 20,
                                  "grain size \(grainSize) sectors is not a power of two up to \(maxGrain)")
            }
            guard numGTEsPerGT >= 1, numGTEsPerGT <= 4096 else {
                throw FormatError(.outOfRange, structure: s, field: "numGTEsPerGT", offset: baseOffset + 44,
                                  "\(numGTEsPerGT) entries per grain table is outside 1...4096")
            }
            guard capacity <= UInt64.max / VMDK.sectorSize else {
                throw FormatError(.outOfRange, structure: s, field: "capacity", offset: baseOffset + 12,
                                  "capacity \(capacity) sectors overflows a byte count")
            }
            if compressed && compressAlgorithm != 1 {
                throw FormatError(.unsupportedFeature, structure: s, field: "compressAlgorithm", offset: baseOffset + 77,
                                  "compression algorithm \(compressAlgorithm) is not deflate (1)")
            }
        }

        /// Entries in the grain directory: ceil(capacity / sectors per grain table).
        var gdEntries: UInt64 {
            let span = UInt64(numGTEsPerGT) * grainSize
            return capacity / span + (capacity % span == 0 ? 0 : 1)
        }
    }
}
