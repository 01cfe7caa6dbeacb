public import FerryDisk
import FerryFormats
import Foundation

/// Targets named by a path or by a URI, for every command that writes one (copy, receive,
/// pipe and raw modes). A path goes to `LocalTarget` unchanged; a URI (`nbd://host/export`,
/// `nbd+unix:///export?socket=…`) goes to the `DiskScheme` registered for it, which opens
/// the remote disk writable, and becomes an in-place `LocalTarget` (`LocalTarget.inPlace`):
///
/// ```
///  refused before any byte is written:  read-only export, export smaller than the source
///  at open:                             block 0 zeroed and held in memory (FirstBlockHold)
///  the copy:                            everything else written through, zero runs zeroed
///  TargetCommit:                        flush, compare, --verify re-read, block 0, flush
/// ```
/// so a cut or failed copy leaves an export with a blank first block, never the old
/// disk's boot sector over new data, nor a bootable-looking half disk.
///
/// A URI target is always raw (the server decides how it stores the export), is not
/// locked (no local node to lock; the server decides who else may write it) and cannot
/// be resumed into (no partial file and no identity for a resume journal).
public enum DiskTargets {
    /// True when `name` is a URI rather than a path.
    public static func isURI(_ name: String) -> Bool { DiskSchemes.uriScheme(of: name) != nil }

    /// The lock a writer of `name` holds for the whole run: `TargetLock.acquire` for a
    /// path, an empty one for a URI (see the type).
    public static func lock(_ name: String) throws -> TargetLock {
        isURI(name) ? TargetLock.unlocked(name) : try TargetLock.acquire(name)
    }

    /// `LocalTarget.check` for a path. A URI is opened writable and closed again: that
    /// refuses a read-only export (exit 73), one ferry cannot reach, and (when `size` is
    /// known) one smaller than the source, before a receiver listens or a copy reads.
    @discardableResult
    public static func check(_ name: String, size: UInt64?, overwrite: Bool, existingAllowed: Bool = false) throws
        -> LocalTarget.Kind
    {
        guard let scheme = try DiskSchemes.scheme(for: name) else {
            return try LocalTarget.check(name, size: size, overwrite: overwrite, existingAllowed: existingAllowed)
        }
        let device = try scheme.openTarget(name, size: size ?? 0)
        try? device.close()
        return .remote
    }

    /// `LocalTarget.open` for a path; for a URI, the remote disk opened writable as an
    /// in-place target of `size` bytes. A remote disk larger than `size` is written from
    /// its start, and a note on standard error says the rest is left as it was.
    public static func open(_ name: String, size: UInt64, overwrite: Bool, lock: TargetLock? = nil) throws -> LocalTarget {
        guard let scheme = try DiskSchemes.scheme(for: name) else {
            return try LocalTarget.open(name, size: size, overwrite: overwrite, lock: lock)
        }
        let device = try scheme.openTarget(name, size: size)
        do {
            let target = try LocalTarget.inPlace(name, device: device, size: size)
            if device.size > size {
                let rest = device.size - size
                try? FileHandle.standardError.write(contentsOf: Data(
                    ("ferry: note: \(name) holds \(device.size) bytes, the source \(size): the last \(rest) bytes "
                        + "(from offset \(size)) are left as they were\n").utf8))
            }
            return target
        } catch {
            try? device.close()
            throw error
        }
    }
}
