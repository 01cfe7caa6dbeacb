import FerryDisk
import Foundation
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Where journals live, and which target a journal describes.
extension ResumeJournal {
    /// Overrides the state directory (tests, or a system that keeps state elsewhere).
    static let stateDirectoryVariable = "FERRY_STATE_DIR"
    static let defaultStateDirectory = "/var/lib/ferry"

    static var stateDirectory: String {
        ProcessInfo.processInfo.environment[stateDirectoryVariable].flatMap { $0.isEmpty ? nil : $0 }
            ?? defaultStateDirectory
    }

    /// The journal of a file target lives beside its partial file (`.NAME.ferry-journal`);
    /// that of a block device (`rdev`) in the state directory, named by its dev_t, so
    /// `/dev/sdb` and `/dev/disk/by-id/…` share it and nothing under /tmp can be planted.
    static func path(for targetPath: String, blockDevice rdev: UInt64?) throws -> String {
        guard let rdev else {
            let partial = LocalTarget.partialName(for: targetPath)
            return String(partial.dropLast("partial".count)) + "journal"
        }
        let directory = try privateStateDirectory()
        let name = TargetIdentity.majorMinor(rdev).replacingOccurrences(of: ":", with: "-")
        return directory + "/block-" + name + ".ferry-journal"
    }

    /// The state directory, created 0700 if missing, and refused unless it is a real
    /// directory (not a symbolic link) owned by this user and closed to everyone else.
    static func privateStateDirectory(_ directory: String = stateDirectory) throws -> String {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw DiskError.system(errno, directory, operation: "create state directory")
        }
        let st: Stat
        do {
            st = try FilePath(directory).stat(followTargetSymlink: false)
        } catch {
            throw DiskError.system(error.rawValue, directory, operation: "check state directory")
        }
        guard st.type == .directory else {
            throw DiskError(
                .notADisk, directory, operation: "check state directory",
                "is not a directory (a symbolic link?); refusing to keep resume journals there")
        }
        guard st.userID.rawValue == geteuid() else {
            throw DiskError(
                .permissionDenied, directory, operation: "check state directory",
                "is owned by uid \(st.userID.rawValue), not by this user (uid \(geteuid())); refusing to keep resume journals there")
        }
        let mode = st.permissions.rawValue & 0o777
        guard mode & 0o077 == 0 else {
            throw DiskError(
                .permissionDenied, directory, operation: "check state directory",
                "is open to other users (mode \(String(mode, radix: 8))); run chmod 700 on it")
        }
        return directory
    }

    /// The identity of an opened target, and its mtime (nil for a block device, whose
    /// node's times say nothing about its content). Nil for an endpoint that is not a
    /// file or a device (those never have journals).
    static func identity(of device: any BlockDevice) throws -> (TargetIdentity, Timestamp?)? {
        // A block device target is written through `FirstBlockHold`: its identity is the device's.
        let unwrapped = (device as? FirstBlockHold)?.base ?? device
        guard let file = unwrapped as? FileDevice else { return nil }
        let st: Stat
        do {
            st = try file.descriptor.stat()
        } catch {
            throw DiskError.system(error.rawValue, file.name, operation: "stat")
        }
        switch file.kind {
        case .blockDevice:
            return (TargetIdentity(kind: .blockDevice, device: UInt64(st.specialDeviceID.rawValue), inode: 0, size: file.size), nil)
        case .regularFile:
            let mtime = st.st_mtim
            return (
                TargetIdentity(
                    kind: .regularFile, device: UInt64(st.deviceID.rawValue), inode: UInt64(st.inode.rawValue),
                    size: UInt64(max(0, st.size))),
                Timestamp(seconds: Int64(mtime.tv_sec), nanoseconds: UInt32(clamping: mtime.tv_nsec))
            )
        }
    }
}
