import FerryCopy
import FerryDisk
import Foundation
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The receiver's durable record of what it has written and flushed, so a transfer
/// cut off after hours continues instead of restarting (ddrescue's mapfile idea).
///
/// The disk is cut into segments (4 MiB by default). When every block of a segment has
/// been verified and written, and a flush has put them on stable storage, the segment's
/// index and its *segment digest* are appended here and the journal is fsynced. The
/// journal is only a claim: on resume the receiver first re-reads every journaled
/// segment from its target and keeps only those whose blocks still hash to the digest
/// (`ReceiverDisk.proveJournaled`), and the sender then proves each of those unchanged
/// in its source. The layout is in `ResumeJournal+Format.swift`.
///
/// A journal is bound to the disk description, the resume parameters and the target's
/// identity (device and inode, or a block device's dev_t, and size; the mtime at a clean
/// stop); a journal that does not match is discarded. It is opened with O_NOFOLLOW and
/// refused when it is not a regular file owned by this user with one link. Journals of
/// block devices live in a private state directory (`stateDirectory`), those of files
/// beside the partial file.
///
/// In a session of several disks a committed disk keeps its journal, every segment
/// recorded plus the commit record, until the whole session is done: a rerun after a
/// cut then reopens the committed target and proves it instead of sending it again.
final class ResumeJournal: Sendable {
    let path: String
    let header: Header
    var segmentSize: Int { Int(header.segmentSize) }
    var diskSize: UInt64 { header.diskSize }
    /// Segments journaled before this session started, with their digests (a claim,
    /// until the receiver re-reads them from the target).
    let recovered: [UInt64: [UInt8]]
    /// The disk digest of an earlier commit of this disk, if the journal records one.
    let committed: [UInt8]?
    /// The leaf key of a keyed-xxh3 journal: a rerun hashes with it, so what this journal
    /// records can still be proven (the file is the owner's alone, 0600).
    let leafKey: LeafKey?
    private let descriptor: Mutex<FileDescriptor?>
    /// Recovered segments voided in this session because new data is written into them.
    private let voided = Mutex<Set<UInt64>>([])

    private init(path: String, header: Header, contents: Contents?, descriptor: FileDescriptor, key: LeafKey? = nil) {
        self.path = path
        self.header = header
        recovered = contents?.recovered ?? [:]
        committed = contents?.committed
        leafKey = key ?? contents?.leafKey.flatMap { LeafKey(bytes: $0) }
        self.descriptor = Mutex(descriptor)
    }

    /// Creates a new journal (the path must not exist: O_CREAT | O_EXCL | O_NOFOLLOW).
    /// `key`: the leaf key of a keyed-xxh3 session, recorded first.
    static func create(at path: String, header: Header, key: LeafKey? = nil) throws -> ResumeJournal {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .noFollow, .closeOnExec, .append],
                permissions: [.ownerReadWrite])
        } catch {
            throw DiskError.system(errnoValue(error), path, operation: "create journal")
        }
        let journal = ResumeJournal(path: path, header: header, contents: nil, descriptor: fd, key: key)
        try journal.write(header.bytes + (key.map { Self.record(Self.keyIndex, $0.bytes) } ?? []))
        return journal
    }

    /// A journal file found at `path`, opened safely and read whole; nil when there is none.
    struct Existing: Sendable {
        let path: String
        let bytes: [UInt8]
        fileprivate let descriptor: FileDescriptor

        /// Continues the journal: cuts a torn last record and appends from there.
        func resume(_ contents: Contents) throws -> ResumeJournal {
            do {
                try descriptor.resize(to: Int64(contents.validLength))
            } catch {
                try? descriptor.close()
                throw DiskError.system(errnoValue(error), path, operation: "truncate journal")
            }
            return ResumeJournal(path: path, header: contents.header, contents: contents, descriptor: descriptor)
        }

        /// Throws the journal away (it describes another disk or another target).
        func discard() {
            try? descriptor.close()
            unlink(path)
        }
    }

    /// Opens an existing journal with O_NOFOLLOW and checks that it is a regular file
    /// owned by this user with a single link; anything else is refused, not followed,
    /// truncated or removed (someone else put it there).
    static func existing(at path: String) throws -> Existing? {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readWrite, options: [.noFollow, .closeOnExec, .append])
        } catch let e as Errno where e == .noSuchFileOrDirectory {
            return nil
        } catch let e as Errno where e == .tooManySymbolicLinkLevels {
            throw DiskError(
                .permissionDenied, path, operation: "open journal",
                "is a symbolic link; refusing to follow it (remove it if you did not make it)")
        } catch {
            throw DiskError.system(errnoValue(error), path, operation: "open journal")
        }
        do {
            let st = try fd.stat()
            guard st.type == .regular else {
                throw DiskError(.notADisk, path, operation: "open journal", "is not a regular file; refusing to use it")
            }
            guard st.userID.rawValue == geteuid() else {
                throw DiskError(
                    .permissionDenied, path, operation: "open journal",
                    "is owned by uid \(st.userID.rawValue), not by this user (uid \(geteuid())); refusing to use it")
            }
            guard st.linkCount == 1 else {
                throw DiskError(
                    .permissionDenied, path, operation: "open journal",
                    "has \(st.linkCount) hard links; refusing to use it")
            }
            let size = Int(st.size)
            guard size <= maxJournalBytes else {
                throw DiskError(.outOfRange, path, operation: "open journal", "is \(size) bytes, more than any journal ferry writes; refusing to read it")
            }
            var bytes = [UInt8](repeating: 0, count: size)
            var done = 0
            while done < size {
                let n = try bytes.withUnsafeMutableBytes {
                    try fd.read(fromAbsoluteOffset: Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: $0[done...]))
                }
                if n == 0 { break }
                done += n
            }
            return Existing(path: path, bytes: Array(bytes[0..<done]), descriptor: fd)
        } catch {
            try? fd.close()
            if let error = error as? Errno { throw DiskError.system(error.rawValue, path, operation: "read journal") }
            throw error
        }
    }

    /// A sanity bound for reading a journal whole: a 64 TiB disk in 64 KiB segments
    /// with every segment journaled several times is still far below it.
    static let maxJournalBytes = 1 << 30

    /// Records that the disk was verified (its digest) and is about to be committed.
    /// Written after every segment is journaled and before the rename, so a crash on
    /// either side of the rename leaves a journal that vouches for the whole disk.
    func appendCommit(digest: [UInt8]) throws {
        try write(Self.record(Self.commitIndex, digest))
    }

    /// Before new data is written into `range`: voids (durably) every recovered segment it
    /// touches. Such a segment's journaled digest describes the old content, and a cut
    /// before the rewrite is checkpointed would otherwise leave a record that a later
    /// rerun could "prove" against a half-rewritten target. Rare (a changed source or
    /// target), so the fsync is held under the lock: no write into the segment precedes it.
    func void(_ range: Range<UInt64>) throws {
        guard !recovered.isEmpty, !range.isEmpty else { return }
        let size = UInt64(segmentSize)
        try voided.withLock { voided in
            var records: [UInt8] = []
            var segments: [UInt64] = []
            for segment in range.lowerBound / size...(range.upperBound - 1) / size
            where recovered[segment] != nil && !voided.contains(segment) {
                records += Self.record(segment, Self.voidDigest)
                segments.append(segment)
            }
            guard !segments.isEmpty else { return }
            try write(records)
            voided.formUnion(segments)
        }
    }

    /// Appends durable segments and makes the journal itself durable.
    func append(_ segments: [(UInt64, [UInt8])]) throws {
        guard !segments.isEmpty else { return }
        try write(segments.flatMap { Self.record($0.0, $0.1) })
    }

    private func write(_ bytes: [UInt8]) throws {
        try descriptor.withLock { fd in
            guard let open = fd else { throw DiskError(.closed, path, operation: "write journal", "the journal is closed") }
            do {
                // O_APPEND: every write lands at the end, whatever the file offset.
                _ = try open.writeAll(bytes)
            } catch {
                throw DiskError.system(errnoValue(error), path, operation: "write journal")
            }
            if fsync(open.rawValue) != 0 { throw DiskError.system(errno, path, operation: "fsync journal") }
        }
    }

    /// The transfer finished: the journal has served its purpose.
    func remove() {
        descriptor.withLock { fd in
            try? fd?.close()
            fd = nil
        }
        unlink(path)
    }

    /// Closes the journal for a later rerun, recording the target's mtime (when known)
    /// so a rerun can tell that somebody wrote the target in between.
    func closeKeeping(targetModified mtime: Timestamp? = nil) {
        if let mtime { try? write(Self.closedRecord(mtime)) }
        descriptor.withLock { fd in
            try? fd?.close()
            fd = nil
        }
    }
}

/// The errno of a swift-system call's error.
func errnoValue(_ error: any Error) -> Int32 { (error as? Errno)?.rawValue ?? EIO }
