import FerryBinary
import FerryCopy
import FerryDisk
import FerryFormats
import FerryProtocol
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Opening, resuming and finishing one disk of a receiving session.
extension ReceiverSession {
    /// `delta`: the hash exchange was agreed (both ends asked for `--sync`, SHA-256 leaves):
    /// a target that already holds something is updated in place and hashed (delta sync).
    func open(_ description: DiskDescription, leaf: LeafHash, delta: Bool = false) async throws -> ReceiverDisk {
        let path = config.targets[Int(description.index)]
        let counters = CopyCounters(stages: self.counters.stages)
        let disk = try await NIOThreadPool.singleton.runIfActive { [config] in
            try Self.openResumable(path, description, config, counters, leaf, delta: delta)
        }
        try await proveJournaled(disk)
        let all = disks.withLock { disks in
            disks[description.index] = disk
            return Array(disks.values)
        }
        if all.count == config.targets.count {
            // Every disk is described: one progress line over all of them.
            let total = all.reduce(UInt64(0)) { $0 + $1.description.size }
            let phase = all.count == 1 ? "receive \(disk.target.path)" : "receive \(all.count) disks"
            reporter.withLock {
                $0 = ProgressReporter(mode: config.progress, phase: phase, total: total, counters: self.counters)
                $0?.start()
            }
        }
        return disk
    }

    /// Opens the target, continuing an interrupted transfer when a journal for this
    /// disk is there and matches it: the same disk description and resume parameters
    /// (its header), and the same target (device and inode or dev_t, size, and the mtime
    /// recorded at a clean stop). It continues into the partial file, or — for a disk
    /// this session committed before it was cut — into the committed file itself, whose
    /// journal holds every segment and a commit record. A journal that does not match
    /// is discarded. What the journal claims is proven afterwards, by re-reading the
    /// target (`ReceiverDisk.proveJournaled`) and then by the sender against its source.
    private static func openResumable(
        _ path: String, _ description: DiskDescription, _ config: ReceiveConfiguration, _ counters: CopyCounters,
        _ leaf: LeafHash, delta: Bool
    ) throws -> ReceiverDisk {
        // The segment journal maps raw offsets of the target: an image format cannot resume.
        let format = try config.prepared?.format(for: path) ?? DiskImage.targetFormat(forPath: path)
        let lock = config.prepared?.lock(for: path)
        // Nor can a remote disk (a URI): it has no partial file and no identity to journal.
        guard path != "-", path != "null:", format == .raw, !DiskTargets.isURI(path) else {
            if delta && DiskTargets.isURI(path) { DeltaNotice.remoteFullCopy(path) }
            let target = try DiskTargets.open(
                path, size: format == .raw ? description.size : 0, overwrite: config.overwrite, lock: lock)
            return try ReceiverDisk(
                description: description, target: target, format: format, counters: counters, journal: nil, leaf: leaf)
        }
        var st = stat()
        let rdev = stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFBLK ? UInt64(st.st_rdev) : nil
        let journalPath = try ResumeJournal.path(for: path, blockDevice: rdev)
        let session = ResumeJournal.Header(
            segmentSize: UInt32(config.segmentSize), leaf: ResumeJournal.LeafHashCode(leaf), diskIndex: description.index,
            diskCount: description.count, diskSize: description.size, sectorSize: description.sectorSize,
            name: Array(description.name.utf8.prefix(ResumeJournal.maxNameBytes)),
            target: ResumeJournal.TargetIdentity(kind: .regularFile, device: 0, inode: 0, size: 0))
        var target: LocalTarget?
        var journal: ResumeJournal?
        // Looked at before the target is opened: a journal that is refused (a symbolic
        // link, another user's file) stops the transfer before anything is written.
        if let found = try ResumeJournal.existing(at: journalPath) {
            // Why the journal is not used (nil: it holds nothing worth a word).
            var reason: String? = "it describes another disk or another session"
            if let contents = try? ResumeJournal.parse(found.bytes), contents.header.session == session.session,
                !leaf.isKeyed || contents.leafKey.flatMap(LeafKey.init(bytes:)) != nil
            {
                reason = nil
                if !contents.recovered.isEmpty {
                    let candidate: LocalTarget?
                    if rdev != nil {
                        candidate = try LocalTarget.open(path, size: description.size, overwrite: config.overwrite, lock: lock)
                    } else if let partial = try LocalTarget.reopenPartial(path, size: description.size) {
                        candidate = partial
                    } else if contents.committed != nil || delta {
                        // (Delta sync writes the file itself in place, like a committed one.)
                        candidate = try LocalTarget.reopenCommitted(path, size: description.size)
                    } else {
                        candidate = nil
                    }
                    reason = "its target is gone"
                    if let candidate, let seen = try ResumeJournal.identity(of: candidate.device) {
                        let (identity, mtime) = seen
                        if identity != contents.header.target {
                            reason = "it was written for \(contents.header.target), and the target now is \(identity)"
                        } else if let closed = contents.closedAt, closed != mtime {
                            reason = "the target was modified after the journal was closed"
                        } else {
                            journal = try found.resume(contents)
                        }
                    }
                    // A device is opened once either way; a file that does not match is closed
                    // (the partial file is then replaced, a committed one needs --overwrite).
                    if journal != nil || rdev != nil { target = candidate } else { try? candidate?.device.close() }
                }
            }
            if journal == nil {
                found.discard()
                if let reason {
                    try? FileHandle.standardError.write(contentsOf: Data(
                        "ferry: discarding the resume journal of \(path): \(reason)\n".utf8))
                }
            }
        }
        // Delta sync writes an existing file of the disk's size in place (a device always is).
        if delta, target == nil, rdev == nil {
            target = try LocalTarget.reopenCommitted(path, size: description.size)
            if target == nil { DeltaNotice.fullCopy(path, description.size) }
        }
        let opened = try target ?? LocalTarget.open(path, size: description.size, overwrite: config.overwrite, lock: lock)
        let deltaHere = delta && !opened.knownZero
        let usable: ResumeJournal
        if let journal {
            usable = journal
        } else {
            guard let identity = try ResumeJournal.identity(of: opened.device)?.0 else {
                return try ReceiverDisk(description: description, target: opened, counters: counters, journal: nil, leaf: leaf)
            }
            var header = session
            header.target = identity
            usable = try ResumeJournal.create(at: journalPath, header: header, key: leaf.key)
        }
        // A keyed session continuing a journal hashes with the journal's key, so that what
        // it records can be proven (the receiver sends that key in `ready`).
        let hashing = usable.leafKey.map { LeafHash.xxh3Keyed($0) } ?? leaf
        return try ReceiverDisk(
            description: description, target: opened, counters: counters, journal: usable, leaf: hashing, delta: deltaHere)
    }

    /// Delta sync, after `ready`: lists the segments a journal proved, then hashes the rest
    /// of the target and lists them as they are hashed; the last list is final (and empty).
    func listForDelta(
        _ disk: ReceiverDisk, _ recovered: [UInt64: [UInt8]], _ outbound: NIOAsyncChannelOutboundWriter<Message>
    ) async throws {
        guard let journal = disk.journal else { return }
        let index = disk.description.index
        let segmentSize = UInt32(journal.segmentSize)
        @Sendable func list(_ entries: [SegmentList.Entry], final: Bool) async throws {
            try await outbound.write(.segments(SegmentList(disk: index, segmentSize: segmentSize, isFinal: final, entries: entries)))
        }
        let proven = recovered.keys.sorted().map { SegmentList.Entry(index: $0, digest: recovered[$0] ?? []) }
        for start in stride(from: 0, to: proven.count, by: SegmentList.maxEntries) {
            try await list(Array(proven[start..<min(proven.count, start + SegmentList.maxEntries)]), final: false)
        }
        let hashed: Int
        do {
            hashed = try await disk.hashTarget(workers: config.workers) { try await list($0, final: false) }
        } catch let error as DiskError {
            throw ProtocolError(.io, error.description)
        }
        try await list([], final: true)
        DeltaNotice.say(
            "ferry receive: \(disk.target.path) holds an earlier copy: hashed \(hashed) segment(s) of it here; only what differs crosses the link")
    }

    /// Re-reads the journaled segments of a resumed disk from its target, so that only
    /// what is there now is offered to the sender, and says what was found.
    private func proveJournaled(_ disk: ReceiverDisk) async throws {
        guard let journal = disk.journal, !journal.recovered.isEmpty else { return }
        let kept: Int
        let dropped: Int
        do {
            (kept, dropped) = try await disk.proveJournaled(workers: config.workers)
        } catch let error as DiskError {
            throw ProtocolError(.io, error.description)
        }
        // A rerun's first proof can take long (a committed disk is re-read whole): what
        // it found durable counts as progress once, so --retry-for starts from here.
        progress.record(
            disk: disk.description.index,
            durable: min(disk.description.size, UInt64(kept) * UInt64(journal.segmentSize)))
        let what = journal.committed != nil ? "was committed by an earlier run of this session" : "was partly written before"
        var line = "ferry: resuming \(disk.target.path): it \(what); \(kept) journaled segment(s) re-read from the target match"
        if dropped > 0 { line += ", \(dropped) no longer do (the target changed) and will be received again" }
        try? FileHandle.standardError.write(contentsOf: Data((line + "; the sender will check them against the source\n").utf8))
    }

    func sendSegments(
        _ recovered: [UInt64: [UInt8]], segmentSize: Int, disk: UInt32, _ outbound: NIOAsyncChannelOutboundWriter<Message>
    ) async throws {
        let entries = recovered.keys.sorted().map { SegmentList.Entry(index: $0, digest: recovered[$0] ?? []) }
        var start = 0
        repeat {
            let end = min(entries.count, start + SegmentList.maxEntries)
            try await outbound.write(.segments(SegmentList(
                disk: disk, segmentSize: UInt32(segmentSize), isFinal: end == entries.count,
                entries: Array(entries[start..<end]))))
            start = end
        } while start < entries.count
    }

    /// Flushes and verifies one disk, and commits it through `TargetCommit`: on a match
    /// journals every segment and the commit (so a rerun of a cut session can prove the
    /// disk instead of resending it), then writes block 0 / renames, and reports the result.
    /// On a mismatch nothing is committed: no block 0, nothing under the final name.
    func finishDisk(_ disk: ReceiverDisk, _ finish: Finish, _ outbound: NIOAsyncChannelOutboundWriter<Message>) async throws {
        let ours: DiskDigest
        do {
            ours = try await NIOThreadPool.singleton.runIfActive {
                try disk.finish(expected: finish.digest) { ours in
                    if let journal = disk.journal {
                        try disk.checkpoint()
                        try journal.appendCommit(digest: ours.bytes)
                    }
                }
            }
            committed.withLock { _ = $0.insert(finish.disk) }
        } catch let mismatch as VerificationError {
            try? await outbound.write(.result(DiskResult(disk: finish.disk, status: .mismatch, digest: mismatch.actual.bytes)))
            throw ProtocolError(
                .verification,
                "disk \(finish.disk): digest \(mismatch.actual.hex) does not match the sender's \(finish.digest.hexString)")
        } catch let error as DiskError {
            throw ProtocolError(.io, error.description)
        } catch let error as DigestError {
            throw ProtocolError(.verification, error.description)
        }
        refreshProgress()
        let size = disk.description.size
        try await outbound.write(.ack(Ack(disk: finish.disk, written: size, durable: size)))
        try await outbound.write(.result(DiskResult(disk: finish.disk, status: .verified, digest: ours.bytes)))
    }
}
