import CFerryShims
import Foundation
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Notices a source that changes while it is sent: overwritten behind the sender
/// (a running guest, a second copy), appended to, or truncated.
///
/// It holds its own descriptor on the source path, opened when the send starts, and
/// compares `fstat` (and a block device's size) then and after the last block was
/// read: the same inode the reader reads, even if the path is renamed over meanwhile.
/// What it can see: a size change (always fatal: the copy is not a whole disk of any
/// moment), and a file's modification or change time (a warning: the copy is what was
/// read, at best crash-consistent). A block device's times do not move when it is
/// written, so writes to a device (a running guest's LV) stay invisible: only a
/// snapshot or a stopped guest gives a consistent copy (README, docs/protocol.md).
public final class SourceWatch: Sendable {
    struct Snapshot: Equatable, Sendable {
        var size: UInt64
        /// st_mtim and st_ctim, in nanoseconds.
        var modified: Int
        var changed: Int
        var isBlockDevice: Bool
    }

    public let path: String
    private let descriptor: FileDescriptor
    private let before: Snapshot

    /// Nil when the path cannot be opened or is not a file or block device (stdin, a pipe).
    public init?(path: String) {
        guard let fd = try? FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking]) else { return nil }
        guard let snapshot = Self.snapshot(fd) else {
            try? fd.close()
            return nil
        }
        self.path = path
        descriptor = fd
        before = snapshot
    }

    deinit { try? descriptor.close() }

    static func snapshot(_ fd: FileDescriptor) -> Snapshot? {
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { return nil }
        let kind = st.st_mode & S_IFMT
        var size = UInt64(st.st_size)
        if kind == S_IFBLK {
            guard ferry_blk_getsize64(fd.rawValue, &size) == 0 else { return nil }
        } else if kind != S_IFREG {
            return nil
        }
        return Snapshot(
            size: size, modified: st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec,
            changed: st.st_ctim.tv_sec * 1_000_000_000 + st.st_ctim.tv_nsec, isBlockDevice: kind == S_IFBLK)
    }

    /// What changed since the watch began: nil if nothing that can be seen did.
    public enum Change: Sendable, Equatable {
        /// Fatal: the size moved.
        case size(from: UInt64, to: UInt64)
        /// A warning: written while it was read.
        case written
    }

    public func check() -> Change? {
        guard let now = Self.snapshot(descriptor) else { return nil }
        if now.size != before.size { return .size(from: before.size, to: now.size) }
        return now == before ? nil : .written
    }

    /// The error for a size change, the same words on every path that sends.
    static func sizeError(_ path: String, from: UInt64, to: UInt64) -> TransferError {
        TransferError(
            .io,
            "\(path) changed size while it was sent (\(from) → \(to) bytes): the copy is not a disk image of any moment; "
                + "stop the guest or send a snapshot, then send again")
    }

    /// Checks after the last block was read: throws on a size change, returns the
    /// warning text for a source written meanwhile.
    func verdict() throws -> String? {
        switch check() {
        case .size(let from, let to): throw Self.sizeError(path, from: from, to: to)
        case .written: return "\(path) was modified"
        case nil: return nil
        }
    }
}
