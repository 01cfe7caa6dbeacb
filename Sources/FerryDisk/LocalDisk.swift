import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Opening local paths as copy sources and targets, with ferry's safety rules:
/// sources are read-only, mounted or in-use block devices are never written, an
/// existing non-empty file is replaced only when asked, and a new file is written
/// under a temporary name that becomes the real one only after a successful flush.
public enum LocalDisk {
    /// Opens a source. "-" is standard input, which needs `streamSize`.
    public static func openSource(_ path: String, streamSize: UInt64? = nil) throws -> any BlockDevice {
        if path == "-" {
            guard let streamSize else {
                throw DiskError(
                    .unsupported, "stdin", operation: "open",
                    "reading a disk from standard input needs its size (--size BYTES)")
            }
            return StreamDevice.standardInput(size: streamSize)
        }
        return try FileDevice.openForReading(path)
    }

    /// True when `path` names a block device.
    public static func isBlockDevice(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFBLK
    }
}

/// A copy target opened by path: the local half of `TargetCommit` (FerryCopy), which
/// runs every check and then calls `commit()` as the last step.
///
/// A regular file is written as `.NAME.ferry-partial` beside the final name and
/// renamed only once its data is verified and on stable storage, so a cut-off or
/// failed copy never leaves a file that looks complete. A block device cannot be
/// renamed; its first block is held in memory (`FirstBlockHold`) and written last.
/// Either way, until `commit()` nothing is under the final name and no block 0.
///
/// The caller holds the target's `TargetLock` from before `open` until after
/// `commit()` or `abandon()`; `open` takes one itself when it is given none.
public final class LocalTarget: Sendable {
    public let path: String
    /// The raw endpoint to write (a format writer may wrap it). For a block device
    /// this is a `FirstBlockHold` over the device.
    public let device: any BlockDevice
    /// True when the target reads as zeros before we write (a new sparse file).
    public let knownZero: Bool
    /// True for block devices and streams: data lands in place, no rename at the end.
    public let writesInPlace: Bool
    /// The temporary name the data is written under until the commit, if any.
    public let partialPath: String?
    /// A lock `open` took itself, released with the target.
    private let ownLock: TargetLock?
    /// A remote disk (`inPlace`): its connection is closed by `commit()` and `abandon()`, so
    /// a server that takes one client at a time (qemu-nbd) is free for a retry at once.
    private let closesWhenFinished: Bool
    private let finished = Mutex(false)

    init(
        path: String, device: any BlockDevice, knownZero: Bool, writesInPlace: Bool, partialPath: String?,
        ownLock: TargetLock? = nil, closesWhenFinished: Bool = false
    ) {
        self.path = path
        self.device = device
        self.knownZero = knownZero
        self.writesInPlace = writesInPlace
        self.partialPath = partialPath
        self.ownLock = ownLock
        self.closesWhenFinished = closesWhenFinished
    }

    /// The temporary name a new file is written under.
    public static func partialName(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return directory + "." + base + ".ferry-partial"
    }

    /// What `check` found at a target path.
    public enum Kind: Sendable, Equatable {
        case stream, discard, blockDevice, newFile, existingFile
        /// A remote disk named by a URI (`nbd://…`), checked by its scheme, never by `check`.
        case remote
    }

    /// The rules a target must pass before anything is written, run by `open` and by
    /// a receiver before it listens, so a bad target is refused before any pairing:
    /// not a directory or anything but a file or a device; an existing non-empty file
    /// only with `overwrite` (or `existingAllowed`: a resume that will reopen it); a
    /// device not mounted or held, and (when `size` is known) large enough.
    @discardableResult
    public static func check(_ path: String, size: UInt64?, overwrite: Bool, existingAllowed: Bool = false) throws -> Kind {
        if path == "-" { return .stream }
        if path == "null:" { return .discard }
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            guard e == ENOENT else { throw DiskError.system(e, path, operation: "open") }
            return .newFile
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            throw DiskError(.isDirectory, path, operation: "open", "is a directory; name a file or a device")
        case S_IFBLK:
            // O_EXCL: the kernel refuses while the device or a partition is mounted or held.
            let device = try FileDevice.openForWriting(path)
            defer { try? device.close() }
            if let size, device.size < size {
                throw DiskError(
                    .tooSmall, path, operation: "open",
                    "the device holds \(device.size) bytes but the source needs \(size); nothing was written")
            }
            return .blockDevice
        case S_IFREG:
            if st.st_size > 0 && !overwrite && !existingAllowed {
                throw DiskError(
                    .exists, path, operation: "open",
                    "already exists and is not empty (\(st.st_size) bytes); pass --overwrite to replace it")
            }
            return st.st_size > 0 ? .existingFile : .newFile
        default:
            throw DiskError(.notADisk, path, operation: "open", "is neither a regular file nor a block device")
        }
    }

    /// Opens `path` as a target for a disk of `size` bytes.
    ///
    /// - "-": standard output; "null:": discard.
    /// - a block device: opened exclusively; must hold at least `size` bytes; block 0
    ///   is zeroed now and held until the commit.
    /// - a regular file: must not exist or be empty, unless `overwrite`.
    ///
    /// `lock` is the target's lock the caller holds; without one, `open` takes it
    /// (and refuses a target another writer holds) before it touches anything.
    public static func open(_ path: String, size: UInt64, overwrite: Bool, lock: TargetLock? = nil) throws -> LocalTarget {
        let kind = try check(path, size: size, overwrite: overwrite)
        switch kind {
        case .stream:
            return LocalTarget(
                path: path, device: StreamDevice.standardOutput(size: size), knownZero: false,
                writesInPlace: true, partialPath: nil)
        case .discard:
            return LocalTarget(path: path, device: NullDevice(size: size), knownZero: true, writesInPlace: true, partialPath: nil)
        case .blockDevice, .newFile, .existingFile:
            break
        case .remote:
            throw DiskError(.unsupported, path, operation: "open", "a remote disk is opened by its URI scheme, not as a local path")
        }
        let ownLock = lock == nil ? try TargetLock.acquire(path) : nil
        if kind == .blockDevice {
            let device = try FileDevice.openForWriting(path)
            guard device.size >= size else {
                throw DiskError(
                    .tooSmall, path, operation: "open",
                    "the device holds \(device.size) bytes but the source needs \(size); nothing was written")
            }
            return LocalTarget(
                path: path, device: try FirstBlockHold(device), knownZero: false, writesInPlace: true, partialPath: nil,
                ownLock: ownLock)
        }
        let partial = partialName(for: path)
        // A partial file left by an earlier failed copy is ours to replace: we hold the lock.
        unlink(partial)
        let device = try FileDevice.create(partial, size: size)
        return LocalTarget(
            path: path, device: device, knownZero: true, writesInPlace: false, partialPath: partial, ownLock: ownLock)
    }

    /// A target written in place through a device a `DiskScheme` opened (an NBD export):
    /// handled as a block device is — its first block is zeroed now and held in memory
    /// (`FirstBlockHold`) until the commit, nothing is renamed, and `abandon()` leaves
    /// what was written but never block 0. `device` must hold at least `size` bytes
    /// (the caller checked; this refuses before writing anything when it does not).
    /// No `TargetLock`: a remote disk has no local node to lock; its server decides who
    /// else may write it.
    public static func inPlace(_ name: String, device: any BlockDevice, size: UInt64) throws -> LocalTarget {
        guard device.size >= size else {
            throw DiskError(
                .tooSmall, name, operation: "open",
                "the target holds \(device.size) bytes but the source needs \(size); nothing was written")
        }
        return LocalTarget(
            path: name, device: try FirstBlockHold(device), knownZero: false, writesInPlace: true, partialPath: nil,
            closesWhenFinished: true)
    }

    /// The last step of a commit, once every check has passed (`TargetCommit` runs
    /// them): writes a held block 0 and flushes, or flushes and gives a new file its
    /// real name and makes the rename durable. Nothing before this leaves a block 0
    /// or a file under the final name. `verifyBlock0` (`--verify`): a held block 0 is read
    /// back from the device once written.
    public func commit(verifyBlock0: Bool = false) throws {
        try device.flush()
        if let hold = device as? FirstBlockHold { try hold.release(readBack: verifyBlock0) }
        if let partialPath {
            if rename(partialPath, path) != 0 {
                throw DiskError.system(errno, path, operation: "rename", context: "giving \(partialPath) its final name")
            }
            try Self.syncDirectory(of: path)
        }
        finished.withLock { $0 = true }
        ownLock?.release()
        if closesWhenFinished { try device.close() }
    }

    /// Makes a rename in the directory of `path` durable.
    static func syncDirectory(of path: String) throws {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let fd = Glibc.open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        if fsync(fd) != 0 {
            throw DiskError.system(errno, directory, operation: "flush", context: "fsync of the directory after the rename")
        }
    }

    /// Removes a partial file after a failure. A block device keeps what was written,
    /// but never its held first block.
    public func abandon() {
        let already = finished.withLock { done -> Bool in
            defer { done = true }
            return done
        }
        guard !already else { return }
        if let partialPath { unlink(partialPath) }
        ownLock?.release()
        if closesWhenFinished { try? device.close() }
    }
}
