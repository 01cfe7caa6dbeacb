import FerryDisk
import FerryBinary

extension NTFSVolume {
    /// Checks the file and computes every write of `replaceContents`; writes nothing.
    func planReplacement(ofRecord number: UInt64, with contents: [UInt8], on device: any BlockDevice,
                         placement: NTFSWritePlacement = .inPlace) throws -> ReplacementPlan {
        let structure = "MFT record \(number)"
        func refuse(_ why: String) -> FormatError { FormatError(.unsupportedFeature, structure: structure, why) }
        func damaged(_ why: String) -> FormatError { FormatError(.inconsistent, structure: structure, why) }
        guard device.capabilities.contains(.writable) else {
            throw DiskError(.readOnly, device.name, operation: "write", "the device is read-only")
        }
        guard offset + bootSector.volumeSize <= device.size + UInt64(bootSector.bytesPerSector) else {
            throw DiskError(.outOfRange, device.name, operation: "write", "the device is smaller than the NTFS volume on it")
        }
        let base = try record(number)
        guard base.inUse else { throw damaged("is not in use") }
        guard base.baseRecordNumber == 0 else { throw damaged("is an extension record of \(base.baseRecordNumber), not a file") }
        guard !base.isDirectory else { throw refuse("is a directory") }
        let everywhere = try attributes(of: base).filter { $0.type == AttributeType.data.rawValue && $0.name.isEmpty }
        let here = base.attributes(.data)
        guard let data = here.first, everywhere.count == 1, here.count == 1 else {
            if everywhere.isEmpty { throw damaged("has no unnamed $DATA") }
            throw refuse("its $DATA lies in extension records ($ATTRIBUTE_LIST); rewriting those is not supported")
        }
        guard !data.isResident else { throw refuse("its $DATA is resident (kept inside the MFT record); only non-resident files are written") }
        guard !data.isCompressed, !data.isEncrypted, data.flags & 0x8000 == 0 else {
            let what = data.isEncrypted ? "encrypted" : data.isCompressed ? "compressed" : "sparse"
            throw refuse("its $DATA is \(what); only plain files are written")
        }
        guard data.lowestVCN == VCN(0) else { throw damaged("its $DATA does not start at VCN 0") }
        let runs = try DataRun.decode(data.runlist, startVCN: VCN(0), totalClusters: bootSector.totalClusters)
        guard runs.allSatisfy({ $0.lcn != nil }) else { throw refuse("its $DATA has sparse runs; only plain files are written") }
        let cs = UInt64(clusterSize)
        let clusters = runs.reduce(0) { $0 + $1.length }  // ≤ 2^42 each by decode, so no overflow
        guard clusters * cs == data.allocatedSize, data.dataSize <= data.allocatedSize, data.initializedSize <= data.dataSize,
            clusters == 0 || data.highestVCN.value == clusters - 1
        else {
            throw damaged("its $DATA sizes (allocated \(data.allocatedSize), data \(data.dataSize), "
                + "initialized \(data.initializedSize), highest VCN \(data.highestVCN.value)) disagree with its \(clusters)-cluster run list")
        }

        let newSize = UInt64(contents.count)
        let needed = (newSize + cs - 1) / cs
        var newRuns = runs
        var patches: [(offset: UInt64, bytes: [UInt8])] = []
        var releases: [(offset: UInt64, bytes: [UInt8])] = []
        var bitmapBytesRead: UInt64 = 0
        if placement == .copyOnWrite, needed > 0 {
            // Every cluster new, the old ones freed only after the record points away from them.
            let bitmap = try NTFSBitmap(volume: self)
            let found = try bitmap.firstFit(
                needed, in: NTFSBitmap.searchOrder(
                    hint: runs.last.flatMap { run in run.lcn.map { $0.value + run.length } } ?? 0, mftCluster: bootSector.mftCluster,
                    totalClusters: bootSector.totalClusters))
            bitmapBytesRead = found.bytesRead
            newRuns = DataRun.appending(found.extents, to: [])
            patches = try bitmap.markInUse(found.extents)
            let old = runs.compactMap { run in run.lcn.map { (lcn: $0, length: run.length) } }
            releases = try bitmap.patches(marking: found.extents, freeing: old)
        } else if needed > clusters {
            let bitmap = try NTFSBitmap(volume: self)
            let found = try bitmap.firstFit(
                needed - clusters, in: NTFSBitmap.searchOrder(
                    hint: runs.last.flatMap { run in run.lcn.map { $0.value + run.length } } ?? 0, mftCluster: bootSector.mftCluster,
                    totalClusters: bootSector.totalClusters))
            bitmapBytesRead = found.bytesRead
            newRuns = DataRun.appending(found.extents, to: runs)
            patches = try bitmap.markInUse(found.extents)
        }
        let copied = placement == .copyOnWrite && needed > 0
        let clustersAfter = copied ? needed : max(needed, clusters)
        var report = NTFSWriteReport(
            record: number, oldSize: data.dataSize, newSize: newSize, dataBytesWritten: 0, metadataBytesWritten: 0, writes: 0,
            clustersAllocated: copied ? needed : clustersAfter - clusters, clustersKeptPastEnd: clustersAfter - needed,
            clustersFreed: copied ? clusters : 0, bitmapBytesRead: bitmapBytesRead, recordsUpdated: [], mirrorUpdated: false,
            runs: newRuns.count)

        var raw: RawMFTRecord?
        var mirror: [(offset: UInt64, length: Int)] = []
        if newRuns != runs || newSize != data.dataSize || newSize != data.initializedSize {
            var edited = try rawRecord(number)
            guard let at = try edited.attributeOffsets().first(where: { $0.type == AttributeType.data.rawValue && edited.bytes[$0.offset + 9] == 0 })
            else { throw damaged("its unnamed $DATA was not found again") }
            try edited.rewriteNonResident(
                at: at.offset, runlist: try DataRun.encode(newRuns), highestVCN: clustersAfter == 0 ? data.highestVCN.value : clustersAfter - 1,
                allocated: clustersAfter * cs, dataSize: newSize, initialized: newSize)
            // The edit must read back as the file we mean, through the reader's own checks.
            let check = try MFTRecord(parsing: try edited.protected(), number: number, offset: 0).attributes(.data)
            guard check.count == 1, check[0].dataSize == newSize, check[0].allocatedSize == clustersAfter * cs,
                try DataRun.decode(check[0].runlist, startVCN: VCN(0), totalClusters: bootSector.totalClusters) == newRuns
            else { throw damaged("the rewritten record does not read back") }
            raw = edited
            report.recordsUpdated = [number]
            mirror = try mirrorPieces(ofRecord: number)
            report.mirrorUpdated = !mirror.isEmpty
        }
        return ReplacementPlan(
            report: report, runs: newRuns, writeLength: needed > clusters || copied ? needed * cs : newSize, bitmapPatches: patches,
            record: raw, mirrorOffsets: mirror, releasePatches: releases)
    }

    /// The record `number` as raw bytes (fix-ups applied) with the disk pieces it occupies.
    func rawRecord(_ number: UInt64) throws -> RawMFTRecord {
        let mft = NTFSStream(
            device: device, volumeOffset: offset, clusterSize: clusterSize, runs: map.runs, resident: nil, dataSize: UInt64.max,
            initializedSize: UInt64.max, what: "$MFT")
        let start = try Checked.multiply(number, UInt64(recordSize), "record number", structure: "MFT")
        let pieces = try Self.pieces(of: mft, at: start, length: recordSize)
        var bytes: [UInt8] = []
        for piece in pieces { bytes += try device.readBytes(at: piece.offset, count: piece.length) }
        _ = try MFTRecord(parsing: bytes, number: number, offset: pieces[0].offset)  // signature, fix-ups, attributes
        try FixUp.apply(&bytes, structure: "MFT record \(number)", offset: pieces[0].offset)
        return RawMFTRecord(number: number, bytes: bytes, pieces: pieces)
    }

    /// Where $MFTMirr (record 1) keeps its copy of record `number`; empty when it keeps none
    /// (it mirrors the first records, four on volumes with clusters up to 4 KiB).
    func mirrorPieces(ofRecord number: UInt64) throws -> [(offset: UInt64, length: Int)] {
        let mirror = try stream(of: try record(1), type: .data)
        guard mirror.resident == nil, number < mirror.dataSize / UInt64(recordSize) else { return [] }
        return try Self.pieces(of: mirror, at: number * UInt64(recordSize), length: recordSize)
    }

    /// The disk pieces holding `length` bytes of `stream` from `position`.
    static func pieces(of stream: NTFSStream, at position: UInt64, length: Int) throws -> [(offset: UInt64, length: Int)] {
        var pieces: [(offset: UInt64, length: Int)] = []
        var done = 0
        while done < length {
            let (disk, contiguous) = try stream.diskOffset(of: position + UInt64(done))
            guard let disk else {
                throw FormatError(.inconsistent, structure: "NTFS stream of \(stream.what)", offset: position, "a sparse run holds metadata")
            }
            let n = Int(min(UInt64(length - done), contiguous))
            pieces.append((disk, n))
            done += n
        }
        return pieces
    }
}
