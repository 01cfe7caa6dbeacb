import Crypto
import FerryBinary
import FerryCopy
import FerryDisk
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The receiver's durable record of what it has written and flushed, so a transfer
/// cut off after hours continues instead of restarting (ddrescue's mapfile idea).
///
/// The disk is cut into segments (64 MiB). When every block of a segment has been
/// verified and written, and a flush has put them on stable storage, the segment's
/// index and its *segment digest* — SHA-256 of the segment's 32-byte block leaves —
/// are appended here and the journal is fsynced. On resume the sender re-reads those
/// segments of its source and proves they are unchanged by sending leaves that hash
/// to the same segment digest; size alone is never trusted.
///
/// ```
///  header:  0 magic "FRRYJRNL" | 8 version u16 | 10 segment size u32 | 14 disk size u64 | 22 leaf hash u8
///           | 23 name (u16 + UTF-8)                       (leaf hash: 0 sha256, 1 xxh3)
///  records: segment index u64 | segment digest (32 bytes)          (40 bytes each, big-endian)
///  commit:  index 0xFFFF_FFFF_FFFF_FFFF | disk digest (32 bytes)   (the disk was verified and committed)
///  void:    segment index u64 | 32 zero bytes                     (the segment is being rewritten)
/// ```
/// The last record of a segment wins.
/// A torn last record (crash mid-append) is ignored. In a session of several disks a
/// committed disk keeps its journal, every segment recorded plus the commit record,
/// until the whole session is done: a rerun after a cut then reopens the committed
/// target and the sender proves it segment by segment instead of sending it again.
final class ResumeJournal: Sendable {
    static let magic = Array("FRRYJRNL".utf8)
    static let version: UInt16 = 2
    static let recordSize = 40
    /// The record index that marks the disk committed (no segment has it).
    static let commitIndex = UInt64.max

    let path: String
    let segmentSize: Int
    let diskSize: UInt64
    /// Segments durable before this session started, with their digests.
    let recovered: [UInt64: [UInt8]]
    /// The disk digest of an earlier commit of this disk, if the journal records one.
    let committed: [UInt8]?
    private let descriptor: Mutex<Int32>
    /// Recovered segments voided in this session because new data is written into them.
    private let voided = Mutex<Set<UInt64>>([])
    private static let voidDigest = [UInt8](repeating: 0, count: 32)

    /// Where the journal of `targetPath` lives: beside a file target, under /var/tmp for a device.
    static func path(for targetPath: String, inPlace: Bool) -> String {
        if inPlace {
            let flat = targetPath.map { $0 == "/" ? "_" : $0 }
            return "/var/tmp/ferry-journal" + String(flat)
        }
        let partial = LocalTarget.partialName(for: targetPath)
        return String(partial.dropLast("partial".count)) + "journal"
    }

    /// Opens (or creates) the journal. An existing journal for a different disk
    /// (size, name, segment size) or kept with another block hash is discarded.
    init(path: String, segmentSize: Int, diskSize: UInt64, name: String, leaf: LeafHash) throws {
        self.path = path
        self.segmentSize = segmentSize
        self.diskSize = diskSize
        var header = ByteWriter()
        header.write(bytes: Self.magic)
        header.writeBigEndian(Self.version)
        header.writeBigEndian(UInt32(segmentSize))
        header.writeBigEndian(diskSize)
        header.writeBigEndian(UInt8(leaf == .sha256 ? 0 : 1))
        let nameBytes = Array(name.utf8.prefix(1024))
        header.writeBigEndian(UInt16(nameBytes.count))
        header.write(bytes: nameBytes)

        var recovered: [UInt64: [UInt8]] = [:]
        var committed: [UInt8]?
        if let existing = FileManager.default.contents(atPath: path).map(Array.init),
            existing.count >= header.bytes.count, Array(existing[0..<header.bytes.count]) == header.bytes
        {
            var offset = header.bytes.count
            let segments = (diskSize + UInt64(segmentSize) - 1) / UInt64(segmentSize)
            while offset + Self.recordSize <= existing.count {
                var index: UInt64 = 0
                for b in existing[offset..<offset + 8] { index = index << 8 | UInt64(b) }
                let digest = Array(existing[offset + 8..<offset + 40])
                if index < segments { recovered[index] = digest == Self.voidDigest ? nil : digest }
                if index == Self.commitIndex { committed = digest }
                offset += Self.recordSize
            }
            let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw DiskError.system(errno, path, operation: "open journal") }
            // Cut a torn record so appends stay aligned.
            _ = ftruncate(fd, off_t(offset))
            descriptor = Mutex(fd)
        } else {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw DiskError.system(errno, path, operation: "create journal") }
            descriptor = Mutex(fd)
            self.recovered = [:]
            self.committed = nil
            try write(header.bytes)
            return
        }
        self.recovered = recovered
        self.committed = committed
    }

    /// Records that the disk was verified (its digest) and is about to be committed.
    /// Written after every segment is journaled and before the rename, so a crash on
    /// either side of the rename leaves a journal that vouches for the whole disk.
    func appendCommit(digest: [UInt8]) throws {
        try append([(Self.commitIndex, digest)])
    }

    /// Before new data is written into `range`: voids (durably) every recovered segment it
    /// touches. Such a segment's journaled digest describes the old content, and a cut
    /// before the rewrite is checkpointed would otherwise leave a record that a later
    /// rerun could "prove" against a half-rewritten target. Rare (a changed source), so
    /// the fsync is held under the lock: no write into the segment precedes it.
    func void(_ range: Range<UInt64>) throws {
        guard !recovered.isEmpty, !range.isEmpty else { return }
        let size = UInt64(segmentSize)
        try voided.withLock { voided in
            var records: [(UInt64, [UInt8])] = []
            for segment in range.lowerBound / size...(range.upperBound - 1) / size
            where recovered[segment] != nil && !voided.contains(segment) {
                records.append((segment, Self.voidDigest))
            }
            try append(records)
            for (segment, _) in records { voided.insert(segment) }
        }
    }

    /// Appends durable segments and makes the journal itself durable.
    func append(_ segments: [(UInt64, [UInt8])]) throws {
        guard !segments.isEmpty else { return }
        var w = ByteWriter()
        for (index, digest) in segments {
            w.writeBigEndian(index)
            w.write(bytes: digest)
        }
        try write(w.bytes)
    }

    private func write(_ bytes: [UInt8]) throws {
        try descriptor.withLock { fd in
            var done = 0
            while done < bytes.count {
                let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DiskError.system(errno, path, operation: "write journal")
                }
                done += n
            }
            if fsync(fd) != 0 { throw DiskError.system(errno, path, operation: "fsync journal") }
        }
    }

    /// The transfer finished: the journal has served its purpose.
    func remove() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
        unlink(path)
    }

    func closeKeeping() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// SHA-256 over a segment's leaves.
    static func segmentDigest(_ leaves: UnsafeRawBufferPointer) -> [UInt8] {
        Array(SHA256.hash(data: leaves))
    }
}
