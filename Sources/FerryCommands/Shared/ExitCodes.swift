import ArgumentParser
import FerryBinary
import FerryCopy
import FerryDisk
import Foundation

/// ferry's exit codes, documented in the README and `ferry --help`. Based on
/// sysexits(3) so scripts can tell the failure classes apart.
public enum FerryExit: Int32, CaseIterable, Sendable {
    case success = 0
    /// Something ferry did not expect (a bug); the message says what.
    case failure = 1
    /// The copy finished but the digests of the two ends differ.
    case verificationFailed = 3
    /// Bad command-line usage (ArgumentParser's own code).
    case usage = 64
    /// The input is damaged or not what it claims (a corrupt image, a hostile header).
    case badData = 65
    /// The source does not exist or cannot be opened.
    case noInput = 66
    /// The target cannot be created or written: exists, too small, mounted, read-only.
    case cannotCreate = 73
    /// A read, write or flush failed (disk full, device error).
    case ioError = 74
    /// The peer could not be reached or the connection broke beyond retrying.
    case network = 69
    /// The peer broke the wire protocol or the two sides disagree.
    case protocolError = 76
    /// Authentication failed: wrong pairing code.
    case authentication = 77
    /// Interrupted by Ctrl-C or SIGTERM; the partial target was removed.
    case interrupted = 130

    public var summary: String {
        switch self {
        case .success: return "success"
        case .failure: return "unexpected failure"
        case .verificationFailed: return "verification failed: the digests differ"
        case .usage: return "usage error"
        case .badData: return "damaged or unsupported input"
        case .noInput: return "source not found or unreadable"
        case .cannotCreate: return "target cannot be created or written"
        case .ioError: return "I/O error"
        case .network: return "network failure"
        case .protocolError: return "protocol error"
        case .authentication: return "authentication failed"
        case .interrupted: return "interrupted"
        }
    }
}

/// Turns any error into one clear line on standard error and an exit code.
public enum ErrorReporter {
    public static func exitCode(for error: any Error) -> FerryExit {
        switch error {
        case let e as DiskError:
            switch e.code {
            case .notFound, .permissionDenied:
                if e.operation == "create" || e.operation == "rename" { return .cannotCreate }
                return e.operation == "open" ? .noInput : .ioError
            case .isDirectory, .notADisk: return .noInput
            case .exists, .tooSmall, .inUse, .readOnly: return .cannotCreate
            case .cancelled: return .interrupted
            case .unsupported: return .badData
            default: return .ioError
            }
        case is FormatError: return .badData
        case is VerificationError: return .verificationFailed
        default: return .failure
        }
    }

    public static func line(for error: any Error) -> String {
        "ferry: error: \(error)"
    }

    /// Prints the error and exits with its code.
    public static func exit(with error: any Error) -> Never {
        let code = exitCode(for: error)
        try? FileHandle.standardError.write(contentsOf: Data((line(for: error) + "\n").utf8))
        Foundation.exit(code.rawValue)
    }
}
