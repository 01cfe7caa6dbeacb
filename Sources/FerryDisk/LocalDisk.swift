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

/// A copy target opened by path, which knows how to finish: `commit()` after a
/// successful copy, `abandon()` after a failed one.
///
/// A regular file is written as `.NAME.ferry-partial` beside the final name and
/// renamed only once its data is on stable storage, so a cut-off copy never leaves
/// a file that looks complete. A block device cannot be renamed; the copy engine
/// instead writes its first block last (see `CopyPlan.holdFirstBlock`).
public final class LocalTarget: Sendable {
    public let path: String
    /// The raw endpoint to write (a format writer may wrap it).
    public let device: any BlockDevice
    /// True when the target reads as zeros before we write (a new sparse file).
    public let knownZero: Bool
    /// True for block devices and streams: data lands in place, no rename at the end.
    public let writesInPlace: Bool
    private let partialPath: String?
    private let finished = Mutex(false)

    init(path: String, device: any BlockDevice, knownZero: Bool, writesInPlace: Bool, partialPath: String?) {
        self.path = path
        self.device = device
        self.knownZero = knownZero
        self.writesInPlace = writesInPlace
        self.partialPath = partialPath
    }

    /// The temporary name a new file is written under.
    public static func partialName(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return directory + "." + base + ".ferry-partial"
    }

    /// Opens `path` as a target for a disk of `size` bytes.
    ///
    /// - "-": standard output; "null:": discard.
    /// - a block device: opened exclusively; must hold at least `size` bytes.
    /// - a regular file: must not exist or be empty, unless `overwrite`.
    public static func open(_ path: String, size: UInt64, overwrite: Bool) throws -> LocalTarget {
        if path == "-" {
            return LocalTarget(
                path: path, device: StreamDevice.standardOutput(size: size), knownZero: false,
                writesInPlace: true, partialPath: nil)
        }
        if path == "null:" {
            return LocalTarget(path: path, device: NullDevice(size: size), knownZero: true, writesInPlace: true, partialPath: nil)
        }
        var st = stat()
        let exists = stat(path, &st) == 0
        if exists {
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR {
                throw DiskError(.isDirectory, path, operation: "open", "is a directory; name a file or a device")
            }
            if type == S_IFBLK {
                let device = try FileDevice.openForWriting(path)
                guard device.size >= size else {
                    throw DiskError(
                        .tooSmall, path, operation: "open",
                        "the device holds \(device.size) bytes but the source needs \(size); nothing was written")
                }
                return LocalTarget(path: path, device: device, knownZero: false, writesInPlace: true, partialPath: nil)
            }
            guard type == S_IFREG else {
                throw DiskError(.notADisk, path, operation: "open", "is neither a regular file nor a block device")
            }
            if st.st_size > 0 && !overwrite {
                throw DiskError(
                    .exists, path, operation: "open",
                    "already exists and is not empty (\(st.st_size) bytes); pass --overwrite to replace it")
            }
        }
        let partial = partialName(for: path)
        // A partial file left by an earlier failed copy is ours to replace.
        unlink(partial)
        let device = try FileDevice.create(partial, size: size)
        return LocalTarget(path: path, device: device, knownZero: true, writesInPlace: false, partialPath: partial)
    }

    /// Flushes the target and, for a new file, gives it its real name.
    public func commit() throws {
        try device.flush()
        guard let partialPath else { return }
        if rename(partialPath, path) != 0 {
            throw DiskError.system(errno, path, operation: "rename", context: "giving \(partialPath) its final name")
        }
        // Make the rename itself durable.
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let fd = Glibc.open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            _ = fsync(fd)
            Glibc.close(fd)
        }
        finished.withLock { $0 = true }
    }

    /// Removes a partial file after a failure. Block devices keep what was written.
    public func abandon() {
        let already = finished.withLock { done -> Bool in
            defer { done = true }
            return done
        }
        guard !already, let partialPath else { return }
        unlink(partialPath)
    }
}
