#if canImport(Glibc)
import Glibc
#endif

/// An error from a disk endpoint: which disk, which operation, and why.
public struct DiskError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        case notFound
        case permissionDenied
        case isDirectory
        case notADisk
        case readOnly
        case inUse
        case exists
        case tooSmall
        case noSpace
        case outOfRange
        case unsupported
        case io
        case closed
        case cancelled
    }

    public var code: Code
    /// The path or endpoint name.
    public var name: String
    /// What was being done: "open", "read", "write", "zero", "flush"…
    public var operation: String
    /// The errno, when a system call failed.
    public var errno: Int32?
    public var detail: String

    public init(_ code: Code, _ name: String, operation: String, errno: Int32? = nil, _ detail: String) {
        self.code = code
        self.name = name
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    /// Maps a failed system call's errno onto a code and a readable message.
    public static func system(_ errno: Int32, _ name: String, operation: String, context: String? = nil) -> DiskError {
        let code: Code
        switch errno {
        case ENOENT: code = .notFound
        case EACCES, EPERM: code = .permissionDenied
        case EISDIR: code = .isDirectory
        case EBUSY: code = .inUse
        case EEXIST: code = .exists
        case ENOSPC, EDQUOT: code = .noSpace
        case EROFS: code = .readOnly
        case EOPNOTSUPP, ENOTTY, EINVAL: code = .unsupported
        default: code = .io
        }
        var message = String(cString: strerror(errno))
        if let context { message = context + ": " + message }
        return DiskError(code, name, operation: operation, errno: errno, message)
    }

    public var description: String { "\(name): \(operation) failed: \(detail)" }
}
