import FerryBinary
import FerryDisk

extension QCOW2 {
    /// Snapshot table limits (qemu's QCOW_MAX_SNAPSHOTS and QCOW_MAX_SNAPSHOTS_SIZE).
    static let maxSnapshots: UInt32 = 65536
    static let maxSnapshotTableBytes: UInt64 = 64 << 20

    /// Opens the qcow2 image at `path` for update. Everything the updater cannot keep
    /// consistent is refused here, before one byte is written: the dirty or corrupt bit,
    /// unknown incompatible features, encryption, an external data file, extended L2
    /// entries, refcounts other than 16 bits, autoclear features (persistent bitmaps a
    /// writer that ignores them would make stale), and tables outside the file or unaligned.
    static func openForUpdate(_ file: FileDevice) throws -> Updater {
        let io = UpdateIO(file: file)
        do {
            return try openChecked(io)
        } catch let error as FormatError {
            throw error.inFile(file.name)
        }
    }

    private static func refuse(_ field: String, at offset: UInt64, _ detail: String) -> FormatError {
        FormatError(.unsupportedFeature, structure: Header.structure, field: field, offset: offset,
                    detail + "; nothing was written")
    }

    private static func openChecked(_ io: UpdateIO) throws -> Updater {
        let fileSize = io.file.size
        guard fileSize >= 72 else {
            throw FormatError(.truncated, structure: Header.structure, offset: 0,
                              "the file holds \(fileSize) bytes, a header needs at least 72")
        }
        let fixed = try io.bytes(at: HostOffset(0), count: 72)
        let bits = fixed.bigEndian(UInt32.self, at: 20).map { min(max($0, 9), 21) } ?? 9
        let cluster0 = try io.bytes(at: HostOffset(0), count: Int(min(fileSize, UInt64(1) << UInt64(bits))))
        let header = try Header(parsing: cluster0)
        if header.incompatibleFeatures & Header.Incompatible.dirty != 0 {
            throw refuse("incompatible_features", at: 72,
                         "the image is marked dirty (a qemu with lazy refcounts did not close it); run `qemu-img check -r all` first")
        }
        if header.extendedL2 {
            throw refuse("incompatible_features", at: 72, "the image has extended L2 entries (subclusters), which ferry does not update")
        }
        if header.refcountOrder != 4 {
            throw refuse("refcount_order", at: 96,
                         "the image has \(1 << header.refcountOrder)-bit refcounts; ferry updates 16-bit ones only (qemu-img amend -o refcount_bits=16)")
        }
        if header.autoclearFeatures != 0 {
            throw refuse("autoclear_features", at: 88,
                         "the image has autoclear features 0x\(String(header.autoclearFeatures, radix: 16)) (persistent dirty bitmaps?), which a write by ferry would make stale")
        }
        let clusterSize = header.clusterSize
        let originalClusters = fileSize / clusterSize + (fileSize % clusterSize == 0 ? 0 : 1)
        let end = originalClusters * clusterSize
        func table(_ name: String, _ field: String, at headerOffset: UInt64, offset: UInt64, bytes: UInt64) throws {
            guard offset & (clusterSize - 1) == 0, offset != 0 || bytes == 0 else {
                throw FormatError(.inconsistent, structure: Header.structure, field: field, offset: headerOffset,
                                  "the \(name) at \(offset) is not cluster aligned")
            }
            guard bytes <= UInt64(FormatLimits.maxTableBytes), offset <= end, bytes <= end - offset else {
                throw FormatError(.inconsistent, structure: Header.structure, field: field, offset: headerOffset,
                                  "the \(name) (\(bytes) bytes at \(offset)) lies outside the \(fileSize)-byte file or exceeds the table limit")
            }
        }
        let span = clusterSize * (clusterSize / 8)
        let needed = header.size / span + (header.size % span == 0 ? 0 : 1)
        guard UInt64(header.l1Size) >= needed else {
            throw FormatError(.inconsistent, structure: Header.structure, field: "l1_size", offset: 36,
                              "l1_size \(header.l1Size) cannot map a virtual size of \(header.size) bytes (needs \(needed))")
        }
        let l1Bytes = UInt64(header.l1Size) * 8
        try table("L1 table", "l1_table_offset", at: 40, offset: header.l1TableOffset, bytes: l1Bytes)
        let rtBytes = UInt64(header.refcountTableClusters) * clusterSize
        try table("refcount table", "refcount_table_offset", at: 48, offset: header.refcountTableOffset, bytes: rtBytes)
        guard rtBytes > 0 else {
            throw FormatError(.inconsistent, structure: Header.structure, field: "refcount_table_clusters", offset: 56,
                              "the image has no refcount table")
        }
        let l1 = QCOW2.decodeBigEndian(try io.bytes(at: HostOffset(header.l1TableOffset), count: Int(l1Bytes)))
        let refcountTable = QCOW2.decodeBigEndian(try io.bytes(at: HostOffset(header.refcountTableOffset), count: Int(rtBytes)))

        var metadata: Set<UInt64> = [0]
        func mark(_ offset: UInt64, _ bytes: UInt64) {
            guard bytes > 0 else { return }
            for c in (offset / clusterSize)...((offset + bytes - 1) / clusterSize) { metadata.insert(c) }
        }
        mark(header.l1TableOffset, l1Bytes)
        mark(header.refcountTableOffset, rtBytes)
        for (i, e) in l1.enumerated() where e & offsetMask != 0 {
            try table("L2 table of L1 entry \(i)", "l1_table_offset", at: 40, offset: e & offsetMask, bytes: clusterSize)
            mark(e & offsetMask, clusterSize)
        }
        for (i, e) in refcountTable.enumerated() where e & refcountBlockMask != 0 {
            try table("refcount block of entry \(i)", "refcount_table_offset", at: 48, offset: e & refcountBlockMask, bytes: clusterSize)
            mark(e & refcountBlockMask, clusterSize)
        }
        for (offset, bytes) in try snapshotMetadata(io, header: header, cluster0: cluster0) {
            try table("snapshot table or snapshot L1 table", "snapshots_offset", at: 64, offset: offset & ~(clusterSize - 1),
                      bytes: bytes + offset % clusterSize)
            mark(offset, bytes)
        }

        let geometry = UpdateGeometry(
            version: header.version, clusterBits: header.clusterBits, virtualSize: header.size,
            codec: header.compressionType == 1 ? .zstd : .rawDeflate,
            l1Offset: HostOffset(header.l1TableOffset))
        let state = UpdateState(
            io: io, geometry: geometry, l1: l1, refcountTable: refcountTable,
            refcountTableOffset: HostOffset(header.refcountTableOffset), metadata: metadata,
            frontier: max(originalClusters, 1), originalClusters: originalClusters)
        var backing: (any BlockDevice)?
        if header.backingFile != nil {
            // The read-only reader opens the chain under the same policy as any source.
            let view = try DiskImage.open(source: io.path)
            backing = (view.disk as? MappedDisk)?.backing
            guard backing != nil else {
                throw FormatError(.inconsistent, structure: Header.structure, field: "backing_file_offset", offset: 8,
                                  "the backing file could not be opened")
            }
        }
        return Updater(io: io, state: state, backing: backing, backingPath: header.backingFile)
    }

    /// The snapshot table and every snapshot's L1 table, as (offset, bytes), from the
    /// header's nb_snapshots / snapshots_offset (qcow2.rst "Snapshots"). Each entry:
    /// `u64 l1_table_offset, u32 l1_size, u16 id_str_size, u16 name_size, u32 date_sec,
    /// u32 date_nsec, u64 vm_clock_nsec, u32 vm_state_size, u32 extra_data_size`, then
    /// extra data, id, name, padded to a multiple of 8.
    private static func snapshotMetadata(_ io: UpdateIO, header: Header, cluster0: [UInt8]) throws -> [(UInt64, UInt64)] {
        guard header.snapshotCount > 0 else { return [] }
        guard header.snapshotCount <= maxSnapshots, let tableOffset = cluster0.bigEndian(UInt64.self, at: 64),
              tableOffset < io.file.size else {
            throw FormatError(.limitExceeded, structure: Header.structure, field: "nb_snapshots", offset: 60,
                              "\(header.snapshotCount) snapshots exceed the limit of \(maxSnapshots), or their table lies past the end of the file")
        }
        var result: [(UInt64, UInt64)] = []
        var position = tableOffset
        for i in 0..<Int(header.snapshotCount) {
            guard position - tableOffset <= maxSnapshotTableBytes - 40 else {
                throw FormatError(.limitExceeded, structure: "qcow2 snapshot table", offset: position,
                                  "the snapshot table exceeds \(maxSnapshotTableBytes) bytes")
            }
            var r = ByteReader(try io.bytes(at: HostOffset(position), count: 40), structure: "qcow2 snapshot \(i)", baseOffset: position)
            let l1Offset = try r.readBigEndian(UInt64.self, "l1_table_offset")
            let l1Size = try r.readBigEndian(UInt32.self, "l1_size")
            let idSize = try r.readBigEndian(UInt16.self, "id_str_size")
            let nameSize = try r.readBigEndian(UInt16.self, "name_size")
            try r.skip(20, field: "dates and vm state")
            let extra = try r.readBigEndian(UInt32.self, "extra_data_size")
            guard UInt64(l1Size) * 8 <= UInt64(FormatLimits.maxTableBytes), extra <= 1024 else {
                throw FormatError(.limitExceeded, structure: "qcow2 snapshot \(i)", offset: position,
                                  "snapshot \(i) claims an L1 table of \(l1Size) entries or \(extra) bytes of extra data")
            }
            result.append((l1Offset, UInt64(l1Size) * 8))
            let length = 40 + UInt64(extra) + UInt64(idSize) + UInt64(nameSize)
            position += length + (8 - length % 8) % 8
        }
        result.append((tableOffset, position - tableOffset))
        return result
    }
}
