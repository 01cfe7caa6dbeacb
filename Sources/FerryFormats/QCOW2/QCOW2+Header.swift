import FerryBinary

extension QCOW2 {
    /// The qcow2 header (qcow2.rst "Header"), with its extensions and backing name.
    ///
    /// | Off | Size | Field |            | Off | Size | Field (v3 only) |
    /// |----:|-----:|-------|            |----:|-----:|-----------------|
    /// | 0 | 4 | magic | | 72 | 8 | incompatible_features |
    /// | 4 | 4 | version (2, 3) | | 80 | 8 | compatible_features |
    /// | 8 | 8 | backing_file_offset | | 88 | 8 | autoclear_features |
    /// | 16 | 4 | backing_file_size | | 96 | 4 | refcount_order |
    /// | 20 | 4 | cluster_bits | | 100 | 4 | header_length |
    /// | 24 | 8 | size (virtual bytes) | | 104 | 1 | compression_type |
    /// | 32 | 4 | crypt_method | | | | |
    /// | 36 | 4 | l1_size (entries) | | | | |
    /// | 40 | 8 | l1_table_offset | | | | |
    /// | 48 | 8 | refcount_table_offset | | | | |
    /// | 56 | 4 | refcount_table_clusters | | | | |
    /// | 60 | 4 | nb_snapshots | | | | |
    /// | 64 | 8 | snapshots_offset | | | | |
    struct Header: Sendable, Equatable {
        var version: UInt32
        var clusterBits: UInt32
        var size: UInt64
        var cryptMethod: UInt32
        var l1Size: UInt32
        var l1TableOffset: UInt64
        var refcountTableOffset: UInt64
        var refcountTableClusters: UInt32
        var snapshotCount: UInt32
        var incompatibleFeatures: UInt64 = 0
        var compatibleFeatures: UInt64 = 0
        var autoclearFeatures: UInt64 = 0
        var refcountOrder: UInt32 = 4
        var headerLength: UInt32 = 72
        var compressionType: UInt8 = 0
        /// Backing file name as stored (not NUL-terminated in the file).
        var backingFile: String?
        /// The backing format header extension (0xe2792aca), e.g. "raw" or "qcow2".
        var backingFormat: String?

        static let structure = "qcow2 header"

        enum Incompatible {
            static let dirty: UInt64 = 1 << 0
            static let corrupt: UInt64 = 1 << 1
            static let externalDataFile: UInt64 = 1 << 2
            static let compressionType: UInt64 = 1 << 3
            static let extendedL2: UInt64 = 1 << 4
            static let known: UInt64 = 0x1f
        }

        enum Extension {
            static let end: UInt32 = 0
            static let backingFormat: UInt32 = 0xe279_2aca
            static let featureNames: UInt32 = 0x6803_f857
            static let externalDataFile: UInt32 = 0x4441_5441
        }

        var clusterSize: UInt64 { 1 << UInt64(clusterBits) }
        var extendedL2: Bool { incompatibleFeatures & Incompatible.extendedL2 != 0 }
        /// Bytes per L2 entry: 8, or 16 with extended L2 (entry + subcluster bitmap).
        var l2EntryBytes: UInt64 { extendedL2 ? 16 : 8 }
        var l2Entries: UInt64 { clusterSize / l2EntryBytes }

        /// Parses and validates the header from the start of the file (cluster 0,
        /// or the whole file if shorter). Only what reading needs is validated here;
        /// table offsets are checked against the file size by the reader.
        init(parsing bytes: [UInt8]) throws {
            var r = ByteReader(bytes, structure: Self.structure)
            let magic = try r.readBigEndian(UInt32.self, "magic")
            guard magic == QCOW2.magic else {
                throw FormatError(.badMagic, structure: Self.structure, field: "magic", offset: 0,
                                  "expected QFI\\xfb, found 0x\(String(magic, radix: 16))")
            }
            version = try r.readBigEndian(UInt32.self, "version")
            guard version == 2 || version == 3 else {
                throw FormatError(.unsupportedVersion, structure: Self.structure, field: "version", offset: 4,
                                  "version \(version) is not 2 or 3")
            }
            let backingOffset = try r.readBigEndian(UInt64.self, "backing_file_offset")
            let backingSize = try r.readBigEndian(UInt32.self, "backing_file_size")
            clusterBits = try r.readBigEndian(UInt32.self, "cluster_bits")
            guard (9...21).contains(clusterBits) else {
                throw FormatError(.outOfRange, structure: Self.structure, field: "cluster_bits", offset: 20,
                                  "cluster_bits \(clusterBits) is outside 9...21 (512 bytes to 2 MiB)")
            }
            size = try r.readBigEndian(UInt64.self, "size")
            cryptMethod = try r.readBigEndian(UInt32.self, "crypt_method")
            l1Size = try r.readBigEndian(UInt32.self, "l1_size")
            l1TableOffset = try r.readBigEndian(UInt64.self, "l1_table_offset")
            refcountTableOffset = try r.readBigEndian(UInt64.self, "refcount_table_offset")
            refcountTableClusters = try r.readBigEndian(UInt32.self, "refcount_table_clusters")
            snapshotCount = try r.readBigEndian(UInt32.self, "nb_snapshots")
            _ = try r.readBigEndian(UInt64.self, "snapshots_offset")
            if version == 3 {
                incompatibleFeatures = try r.readBigEndian(UInt64.self, "incompatible_features")
                compatibleFeatures = try r.readBigEndian(UInt64.self, "compatible_features")
                autoclearFeatures = try r.readBigEndian(UInt64.self, "autoclear_features")
                refcountOrder = try r.readBigEndian(UInt32.self, "refcount_order")
                headerLength = try r.readBigEndian(UInt32.self, "header_length")
                guard headerLength >= 104, headerLength <= bytes.count, UInt64(headerLength) <= clusterSize else {
                    throw FormatError(.outOfRange, structure: Self.structure, field: "header_length", offset: 100,
                                      "header_length \(headerLength) is below 104 or beyond cluster 0")
                }
                if headerLength > 104 { compressionType = try r.readUInt8("compression_type") }
            }
            try validateFeatures()
            try parseExtensions(bytes)
            if backingOffset != 0 {
                guard backingSize <= 1023, backingOffset < UInt64(bytes.count),
                      UInt64(backingSize) <= UInt64(bytes.count) - backingOffset else {
                    throw FormatError(.outOfRange, structure: Self.structure, field: "backing_file_offset", offset: 8,
                                      "backing file name (\(backingSize) bytes at \(backingOffset)) lies outside cluster 0 or exceeds 1023 bytes")
                }
                let start = Int(backingOffset)
                backingFile = String(decoding: bytes[start..<start + Int(backingSize)], as: UTF8.self)
            }
        }

        /// Refuses what a reader cannot honour (qcow2.rst: "must refuse to open an
        /// image with unknown incompatible feature bits").
        private func validateFeatures() throws {
            let s = Self.structure
            if cryptMethod != 0 {
                throw FormatError(.unsupportedFeature, structure: s, field: "crypt_method", offset: 32,
                                  "the image is encrypted (method \(cryptMethod)); decrypt it first with qemu-img convert")
            }
            let unknown = incompatibleFeatures & ~Incompatible.known
            if unknown != 0 {
                throw FormatError(.unsupportedFeature, structure: s, field: "incompatible_features", offset: 72,
                                  "unknown incompatible feature bits 0x\(String(unknown, radix: 16)); a newer qemu wrote this image")
            }
            if incompatibleFeatures & Incompatible.corrupt != 0 {
                throw FormatError(.unsupportedFeature, structure: s, field: "incompatible_features", offset: 72,
                                  "the image is marked corrupt; repair it with `qemu-img check -r all` first")
            }
            if incompatibleFeatures & Incompatible.externalDataFile != 0 {
                throw FormatError(.unsupportedFeature, structure: s, field: "incompatible_features", offset: 72,
                                  "the guest data lives in an external data file, which ferry does not read; convert with qemu-img first")
            }
            let compressed = incompatibleFeatures & Incompatible.compressionType != 0
            if compressionType > 1 || (compressionType != 0 && !compressed) {
                throw FormatError(.unsupportedFeature, structure: s, field: "compression_type", offset: 104,
                                  "compression type \(compressionType) is not deflate (0) or zstd (1) or lacks its feature bit")
            }
            if extendedL2 && clusterBits < 14 {
                throw FormatError(.outOfRange, structure: s, field: "cluster_bits", offset: 20,
                                  "extended L2 entries need clusters of at least 16 KiB")
            }
        }

        /// Header extensions: `{u32 type, u32 length, data, pad to 8}` until type 0,
        /// all inside cluster 0. Each step moves forward by at least 8 bytes.
        private mutating func parseExtensions(_ bytes: [UInt8]) throws {
            var r = ByteReader(bytes, structure: "qcow2 header extension")
            try r.seek(to: Int(headerLength), field: "header_length")
            while r.remaining >= 8 {
                let at = r.position
                let type = try r.readBigEndian(UInt32.self, "type")
                let length = try r.readBigEndian(UInt32.self, "length")
                if type == Extension.end { return }
                guard Int(length) <= r.remaining else {
                    throw FormatError(.outOfRange, structure: "qcow2 header extension", field: "length", offset: UInt64(at + 4),
                                      "extension 0x\(String(type, radix: 16)) of \(length) bytes runs past cluster 0")
                }
                let data = try r.readBytes(Int(length), field: "data")
                if type == Extension.backingFormat { backingFormat = String(decoding: data, as: UTF8.self) }
                let pad = (8 - Int(length) % 8) % 8
                try r.skip(min(pad, r.remaining), field: "padding")
            }
        }
    }
}
