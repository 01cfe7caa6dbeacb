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
    func open(_ description: DiskDescription, leaf: LeafHash) async throws -> ReceiverDisk {
        let path = config.targets[Int(description.index)]
        let counters = CopyCounters(stages: self.counters.stages)
        let disk = try await NIOThreadPool.singleton.runIfActive { [config] in
            do {
                return try Self.openResumable(path, description, config, counters, leaf)
            } catch let error as DiskError {
                throw ProtocolError(.io, error.description)
            }
        }
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
    /// disk (same size and name) is there: into its partial file, or — for a disk this
    /// session committed before it was cut — into the committed file itself, whose
    /// journal holds every segment and a commit record. The sender then proves each
    /// journaled segment against its source by hash; nothing is trusted by size.
    private static func openResumable(
        _ path: String, _ description: DiskDescription, _ config: ReceiveConfiguration, _ counters: CopyCounters,
        _ leaf: LeafHash
    ) throws -> ReceiverDisk {
        // The segment journal maps raw offsets of the target: an image format cannot resume.
        let format = try config.prepared?.format(for: path) ?? DiskImage.targetFormat(forPath: path)
        let lock = config.prepared?.lock(for: path)
        guard path != "-", path != "null:", format == .raw else {
            let target = try LocalTarget.open(
                path, size: format == .raw ? description.size : 0, overwrite: config.overwrite, lock: lock)
            return try ReceiverDisk(
                description: description, target: target, format: format, counters: counters, journal: nil, leaf: leaf)
        }
        let inPlace = LocalDisk.isBlockDevice(path)
        let journalPath = ResumeJournal.path(for: path, inPlace: inPlace)
        var target: LocalTarget?
        var journal: ResumeJournal?
        if FileManager.default.fileExists(atPath: journalPath) {
            let found = try ResumeJournal(
                path: journalPath, segmentSize: config.segmentSize, diskSize: description.size, name: description.name,
                leaf: leaf)
            if !found.recovered.isEmpty {
                if inPlace {
                    target = try LocalTarget.open(path, size: description.size, overwrite: config.overwrite, lock: lock)
                } else {
                    target = try LocalTarget.reopenPartial(path, size: description.size)
                    if target == nil, found.committed != nil {
                        target = try LocalTarget.reopenCommitted(path, size: description.size)
                    }
                }
            }
            if target == nil { found.remove() } else { journal = found }
        }
        let opened = try target ?? LocalTarget.open(path, size: description.size, overwrite: config.overwrite, lock: lock)
        let usable = try journal ?? ResumeJournal(
            path: journalPath, segmentSize: config.segmentSize, diskSize: description.size, name: description.name,
            leaf: leaf)
        if !usable.recovered.isEmpty {
            let what = usable.committed != nil ? "was committed by an earlier run of this session" : "was partly written before"
            try? FileHandle.standardError.write(contentsOf: Data(
                "ferry: resuming \(path): it \(what) (\(usable.recovered.count) segment(s) journaled); the sender will check them against the source\n".utf8))
        }
        return try ReceiverDisk(description: description, target: opened, counters: counters, journal: usable, leaf: leaf)
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
