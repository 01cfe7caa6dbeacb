import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One writer per target, for the whole run: a second `ferry copy` or `ferry receive`
/// naming the same target is refused before it deletes or touches anything (its
/// partial file, its journal, the target itself).
///
/// A file target is guarded by `flock` on `.NAME.ferry-lock` beside it (its real
/// directory, symlinks resolved), which stands for the target, its partial file and
/// its journal together. A block device is guarded by `flock` on the device node
/// itself; writing still opens it with `O_EXCL`, which the kernel enforces against
/// mounts and every other exclusive opener. `flock` locks belong to an open file
/// description, so two runs in one process exclude each other as two processes do.
/// The kernel drops the lock when the process dies, so a crashed run never blocks
/// the next one; its stale lock file is reused.
public final class TargetLock: Sendable {
    /// The target as named.
    public let path: String
    /// The lock file, nil for a block device (locked on its node) and for "-" / "null:".
    public let lockPath: String?
    private let descriptor: Mutex<FileDescriptor?>

    private init(path: String, lockPath: String?, descriptor: FileDescriptor?) {
        self.path = path
        self.lockPath = lockPath
        self.descriptor = Mutex(descriptor)
    }

    /// Attempts a lock file may be replaced under us (a holder releasing unlinks it).
    private static let maxAttempts = 8
    /// systemd-udevd takes a shared `flock` on a block device while it probes it (after
    /// any writer closes it); such a lock is brief, so a device is retried this long.
    /// systemd's "block device locking" convention is the reason to lock the node.
    private static let devicePatience = 3.0

    /// A lock that guards nothing: for a target with no local file or node to lock (a
    /// remote disk named by a URI, whose server decides who else may write it).
    public static func unlocked(_ name: String) -> TargetLock {
        TargetLock(path: name, lockPath: nil, descriptor: nil)
    }

    /// Locks `path` for writing, or throws `.inUse` naming the other writer.
    public static func acquire(_ path: String) throws -> TargetLock {
        if path == "-" || path == "null:" { return TargetLock(path: path, lockPath: nil, descriptor: nil) }
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFBLK {
            let fd = try open(path, path, .readOnly, options: [.closeOnExec], create: false)
            try lock(fd, path: path, holder: nil, patience: devicePatience)
            return TargetLock(path: path, lockPath: nil, descriptor: fd)
        }
        let lockPath = lockName(for: path)
        for _ in 0..<maxAttempts {
            let fd = try open(lockPath, path, .readWrite, options: [.closeOnExec, .noFollow], create: true)
            try lock(fd, path: path, holder: lockPath)
            // A holder that released unlinked the file we opened: lock the new one instead.
            var mine = stat(), current = stat()
            guard fstat(fd.rawValue, &mine) == 0, stat(lockPath, &current) == 0,
                mine.st_dev == current.st_dev, mine.st_ino == current.st_ino
            else {
                try? fd.close()
                continue
            }
            // The holder's pid, for the message a second writer gets.
            _ = ftruncate(fd.rawValue, 0)
            _ = try? fd.writeAll(toAbsoluteOffset: 0, Array("\(getpid())\n".utf8))
            return TargetLock(path: path, lockPath: lockPath, descriptor: fd)
        }
        throw DiskError(.inUse, path, operation: "lock", "\(lockPath) keeps changing; another ferry is starting on this target")
    }

    /// Removes the lock file and drops the lock. Safe to call twice.
    public func release() {
        guard let fd = descriptor.withLock({ d -> FileDescriptor? in
            defer { d = nil }
            return d
        }) else { return }
        // Unlink while still holding it: a waiter that opened this file sees it is gone.
        if let lockPath { unlink(lockPath) }
        try? fd.close()
    }

    deinit { release() }

    /// `.NAME.ferry-lock` beside the real file `path` names (symlinks in the directory,
    /// and a symlink as the last component, resolved), so two names of one file share it.
    public static func lockName(for path: String) -> String {
        let real = resolved(path)
        let slash = real.lastIndex(of: "/")
        let directory = slash.map { String(real[...$0]) } ?? ""
        let base = slash.map { String(real[real.index(after: $0)...]) } ?? real
        return directory + "." + base + ".ferry-lock"
    }

    /// The absolute real path of `path`, which need not exist (its directory is resolved).
    public static func resolved(_ path: String) -> String {
        if let real = realPath(path) { return real }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard let realDirectory = realPath(directory.isEmpty ? "/" : directory) else { return path }
        return (realDirectory == "/" ? "" : realDirectory) + "/" + base
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func open(
        _ file: String, _ target: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions,
        create: Bool
    ) throws -> FileDescriptor {
        do {
            if create {
                return try FileDescriptor.open(
                    FilePath(file), mode, options: options.union(.create), permissions: [.ownerReadWrite],
                    retryOnInterrupt: true)
            }
            return try FileDescriptor.open(FilePath(file), mode, options: options, retryOnInterrupt: true)
        } catch let e as Errno {
            // "create": a lock file that cannot be made is a target that cannot be created.
            throw DiskError.system(e.rawValue, target, operation: create ? "create" : "open", context: "opening \(file)")
        }
    }

    /// The pid a holder wrote into its lock file, if it can be read.
    private static func holderPID(_ lockPath: String) -> Int32? {
        guard let fd = try? FileDescriptor.open(FilePath(lockPath), .readOnly, options: [.closeOnExec, .noFollow]) else {
            return nil
        }
        defer { try? fd.close() }
        var bytes = [UInt8](repeating: 0, count: 16)
        let n = (try? bytes.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        return Int32(String(decoding: bytes[0..<n].filter { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self))
    }

    private static func lock(_ fd: FileDescriptor, path: String, holder: String?, patience: Double = 0) throws {
        var waited = 0.0
        while flock(fd.rawValue, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK && waited < patience {
                usleep(50_000)
                waited += 0.05
                continue
            }
            try? fd.close()
            guard e == EWOULDBLOCK else {
                throw DiskError.system(e, path, operation: "lock", context: "flock")
            }
            var who = holder == nil ? "another ferry (or a tool holding the device's lock)" : "another ferry"
            if let holder, let pid = holderPID(holder) { who += " (pid \(pid))" }
            throw DiskError(
                .inUse, path, operation: "lock", errno: e,
                "\(who) is writing this target\(holder.map { " (it holds \($0))" } ?? ""); refusing to touch it")
        }
    }
}
