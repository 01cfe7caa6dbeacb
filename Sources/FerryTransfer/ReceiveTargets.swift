import FerryCopy
import FerryDisk
public import FerryFormats
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Every target of a receive, checked and locked before anything listens: a target
/// ferry would refuse after pairing (exists without --overwrite, a directory, a
/// mounted device, a name whose format ferry cannot write, one file named twice, one
/// another ferry is writing) is refused before the operator walks to the other host.
/// The locks are held until the receive ends, across reconnects.
public final class ReceiveTargets: Sendable {
    public let targets: [String]
    private let locks: [String: TargetLock]
    private let formats: [String: ImageFormat]

    private init(targets: [String], locks: [String: TargetLock], formats: [String: ImageFormat]) {
        self.targets = targets
        self.locks = locks
        self.formats = formats
    }

    /// Checks and locks `targets`. `size`: the disk size when it is known before the
    /// sender says it (raw mode), so a device too small is refused now.
    public static func prepare(
        _ targets: [String], overwrite: Bool, size: UInt64? = nil, explicitFormat: ImageFormat? = nil
    ) throws -> ReceiveTargets {
        try refuseDuplicates(targets)
        var formats: [String: ImageFormat] = [:]
        var locks: [String: TargetLock] = [:]
        for path in targets {
            let format = try DiskImage.targetFormat(forPath: path, explicit: explicitFormat)
            formats[path] = format
            // A file this session committed before a cut is reopened by its journal, not refused.
            let remote = DiskTargets.isURI(path)
            let journaled =
                format == .raw && path != "-" && path != "null:" && !remote
                && (try? ResumeJournal.path(for: path, blockDevice: nil)).map { FileManager.default.fileExists(atPath: $0) } == true
            // Locked first: the check's own open of a device then happens under the lock.
            if path != "-" && path != "null:" { locks[path] = try DiskTargets.lock(path) }
            // A URI is connected to now: a read-only or (raw mode) too small export is refused here.
            try DiskTargets.check(path, size: size, overwrite: overwrite, existingAllowed: journaled)
            if remote {
                try? FileHandle.standardError.write(contentsOf: Data(
                    "ferry receive: \(path) is written in place over the network; a cut transfer cannot resume into it and starts over\n".utf8))
            } else if format != .raw {
                try? FileHandle.standardError.write(contentsOf: Data(
                    "ferry receive: \(path) is written as \(format.rawValue); a cut transfer cannot resume into it and starts over\n".utf8))
            }
        }
        return ReceiveTargets(targets: targets, locks: locks, formats: formats)
    }

    /// The lock this receive holds on `path`.
    func lock(for path: String) -> TargetLock? { locks[path] }

    /// The format `path` is written in (by its name, or as told).
    func format(for path: String) throws -> ImageFormat {
        if let format = formats[path] { return format }
        return try DiskImage.targetFormat(forPath: path)
    }

    /// Drops every lock (and removes the lock files).
    public func release() {
        for lock in locks.values { lock.release() }
    }

    /// Two targets that are one file (or one device): the second disk would silently
    /// replace the first. Compared by device and inode when they exist, by real path
    /// when they do not. "null:" may be named any number of times.
    static func refuseDuplicates(_ targets: [String]) throws {
        var seen: [String: Int] = [:]
        for (i, path) in targets.enumerated() where path != "null:" {
            let key: String
            var st = stat()
            if path == "-" {
                key = "-"
            } else if DiskTargets.isURI(path) {
                key = "uri " + path
            } else if stat(path, &st) == 0 {
                key = (st.st_mode & S_IFMT) == S_IFBLK ? "device \(st.st_rdev)" : "inode \(st.st_dev):\(st.st_ino)"
            } else {
                key = "path " + TargetLock.resolved(path)
            }
            if let first = seen[key] {
                let names = targets[first] == path ? "'\(path)' twice" : "'\(targets[first])' and '\(path)'"
                throw TransferError(
                    .usage,
                    "targets \(first + 1) and \(i + 1) are the same \(path == "-" ? "stream" : "file") (\(names)); each disk needs its own target")
            }
            seen[key] = i
        }
    }
}
