public import FerryDisk
import FerryBinary

/// What one `replaceContents` did, for the plan/undo output and the read/write budget.
public struct NTFSWriteReport: Sendable, Equatable {
    /// The file's MFT record.
    public var record: UInt64
    public var oldSize: UInt64
    public var newSize: UInt64
    /// Bytes written to the file's clusters (the contents, and zeros to the end of a new cluster).
    public var dataBytesWritten: UInt64
    /// Bytes written to $Bitmap, the MFT record and $MFTMirr.
    public var metadataBytesWritten: UInt64
    /// Calls to `device.write`.
    public var writes: Int
    /// Clusters taken from $Bitmap (growth only).
    public var clustersAllocated: UInt64
    /// Clusters the file keeps past its new end: shrinking never frees clusters.
    public var clustersKeptPastEnd: UInt64
    /// Clusters given back to $Bitmap (copy-on-write only: the file's old clusters).
    public var clustersFreed: UInt64
    /// Bytes of $Bitmap read to find free clusters.
    public var bitmapBytesRead: UInt64
    /// MFT records rewritten (empty when only the data changed).
    public var recordsUpdated: [UInt64]
    /// True when the record is one of those $MFTMirr copies, and the copy was rewritten too.
    public var mirrorUpdated: Bool
    /// Runs (fragments) of the file after the write.
    public var runs: Int

    public var bytesWritten: UInt64 { dataBytesWritten + metadataBytesWritten }
}

/// Where `replaceContents` puts a file's new bytes.
public enum NTFSWritePlacement: Sendable {
    /// Over the file's own clusters (and new ones when it grows).
    case inPlace
    /// Into new clusters, switched to by the record write; the old clusters are freed last.
    case copyOnWrite
}

extension NTFSVolume {
    /// Why this volume must not be written (dirty flag, hibernated, $LogFile not clean);
    /// empty when writing is safe. `ferry fix --force` may override these, nothing else.
    /// A volume too damaged to read these throws instead.
    public func writeRefusals() throws -> [String] {
        var refusals: [String] = []
        if try volumeInformation().isDirty {
            refusals.append("the NTFS volume is marked dirty ($Volume flag 0x0001): chkdsk is due; boot Windows or run chkdsk first")
        }
        if try hibernationState() == .hibernated {
            refusals.append("Windows is hibernated on this volume (hiberfil.sys starts with \"hibr\"; Fast Startup does this too): "
                + "writing would be lost or corrupt the resumed system")
        }
        switch journalState() {
        case .empty, .clean: break
        case .unclean:
            refusals.append("the NTFS journal ($LogFile) is not clean: Windows did not shut down cleanly; boot it and shut it down")
        case .unknown:
            refusals.append("the NTFS journal ($LogFile) restart page cannot be read, so its state is unknown")
        }
        return refusals
    }

    /// Finds a file by its path from the root, e.g. ["WINDOWS", "system32", "config", "SYSTEM"]
    /// (case-insensitive through $UpCase), returning its MFT record number; nil when a
    /// component is missing or contains a path separator.
    public func lookup(_ path: [String]) throws -> UInt64? {
        guard path.allSatisfy({ !$0.isEmpty && !$0.contains("/") && !$0.contains("\\") }) else { return nil }
        return try file(at: path.joined(separator: "/"))?.number
    }

    /// Replaces the unnamed $DATA of the file record `number` with `contents`, in place, through
    /// `device` (the device this volume is on, or a wrapper of it; every byte changed goes
    /// through `device.write`, at the same offsets this volume reads).
    ///
    /// Same size: the clusters are overwritten. Larger: clusters are taken from $Bitmap (first
    /// fit from the file's end, wrapping, the MFT zone last; holes left by deleted files are
    /// used, so the file may become fragmented), the run list extended and the sizes updated. Smaller: the data and
    /// initialized sizes shrink; the clusters stay allocated to the file (none are freed).
    ///
    /// Refused before any byte is written: a resident, compressed, encrypted or sparse $DATA, one
    /// split over extension records, a damaged run list, too little free space, or a run list
    /// that would not fit in the record. This does not consult `writeRefusals()`; callers do.
    ///
    /// Writes go in this order, each stage flushed before the next, so that a crash leaves at
    /// worst a file whose old clusters hold part of the new bytes: the data clusters, then
    /// $Bitmap, then the MFT record (fix-ups renewed), then its $MFTMirr copy.
    ///
    /// `.copyOnWrite` writes the new contents into free clusters instead, then points the
    /// record at them, then frees the old clusters: a crash at any write boundary leaves the
    /// file either wholly old or wholly new (at worst with clusters marked in use that nothing
    /// uses, which chkdsk reclaims). It needs free space for the whole new contents.
    public func replaceContents(ofRecord number: UInt64, with contents: [UInt8], on device: any BlockDevice,
                                placement: NTFSWritePlacement = .inPlace) throws -> NTFSWriteReport {
        let plan = try planReplacement(ofRecord: number, with: contents, on: device, placement: placement)
        return try plan.apply(volume: self, contents: contents, device: device)
    }
}

/// Everything `replaceContents` will write, computed (and checked) before the first write.
struct ReplacementPlan {
    var report: NTFSWriteReport
    var runs: [DataRun]
    /// Bytes of the stream to write, from 0: the contents, then zeros to the end of a new cluster.
    var writeLength: UInt64
    var bitmapPatches: [(offset: UInt64, bytes: [UInt8])]
    var record: RawMFTRecord?
    var mirrorOffsets: [(offset: UInt64, length: Int)]
    /// $Bitmap writes after the record (copy-on-write: the old clusters freed).
    var releasePatches: [(offset: UInt64, bytes: [UInt8])] = []

    func apply(volume: NTFSVolume, contents: [UInt8], device: any BlockDevice) throws -> NTFSWriteReport {
        var report = self.report
        func write(_ bytes: ArraySlice<UInt8>, at offset: UInt64) throws {
            try bytes.withUnsafeBytes { try device.write($0, at: offset) }
            report.writes += 1
        }
        let cs = UInt64(volume.clusterSize)
        var position: UInt64 = 0
        let padded = contents + [UInt8](repeating: 0, count: Int(writeLength) - contents.count)
        for run in runs where position < writeLength {
            guard let lcn = run.lcn else { continue }  // the plan has no sparse runs
            let start = run.vcn.value * cs
            let n = min(run.length * cs, writeLength - start)
            try write(padded[Int(start)..<Int(start + n)], at: volume.offset + lcn.value * cs)
            position = start + n
        }
        report.dataBytesWritten = writeLength
        try device.flush()
        for patch in bitmapPatches {
            try write(patch.bytes[...], at: patch.offset)
            report.metadataBytesWritten += UInt64(patch.bytes.count)
        }
        if !bitmapPatches.isEmpty { try device.flush() }
        if let record {
            let bytes = try record.protected()
            for target in [record.pieces, mirrorOffsets] where !target.isEmpty {
                var done = 0
                for piece in target {
                    try write(bytes[done..<done + piece.length], at: piece.offset)
                    done += piece.length
                }
                report.metadataBytesWritten += UInt64(bytes.count)
                try device.flush()
            }
        }
        for patch in releasePatches {
            try write(patch.bytes[...], at: patch.offset)
            report.metadataBytesWritten += UInt64(patch.bytes.count)
        }
        if !releasePatches.isEmpty { try device.flush() }
        return report
    }
}
