import ArgumentParser
import FerryBinary
import FerryCopy
import FerryDisk
import FerryESXi
import FerryFix
import FerryNBD
import FerryRegistry
import FerryProtocol
import FerryTarget
import FerryTransfer
import Foundation

/// ferry's exit codes: the one table every command uses, printed by `ferry --help` and
/// the README. Based on sysexits(3) so scripts can tell the failure classes apart.
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
    /// The peer could not be reached or the connection broke beyond retrying.
    case network = 69
    /// A file the system must provide is missing: /proc is not mounted.
    case osFile = 72
    /// The target cannot be created or written: exists, too small, mounted, read-only.
    case cannotCreate = 73
    /// A read, write or flush failed (disk full, device error).
    case ioError = 74
    /// The source is in use: a VM that is running (read it after shutdown, through a snapshot,
    /// or with --force for a copy that is crash-consistent at best).
    case inUse = 75
    /// The peer broke the wire protocol or the two sides disagree.
    case protocolError = 76
    /// Authentication failed: wrong pairing code, an ESXi host refused the password, or its
    /// certificate does not match the pin (or is not trusted and no pin was given); NBD TLS
    /// could not be had (refused, required, or a certificate or key that does not verify).
    case authentication = 77
    /// The guest cannot be changed safely as it is (ferry fix: dirty or hibernated volume,
    /// dirty hive, no Windows, a step that cannot be done); nothing was written.
    case refused = 78
    /// Interrupted by Ctrl-C or SIGTERM; the partial target was removed.
    case interrupted = 130

    public var summary: String {
        switch self {
        case .success: return "success"
        case .failure: return "unexpected failure"
        case .verificationFailed: return "verification failed"
        case .usage: return "usage"
        case .badData: return "damaged or unsupported input"
        case .noInput: return "source not found or unreadable"
        case .network: return "network failure"
        case .osFile: return "/proc not mounted"
        case .cannotCreate: return "target cannot be created or written"
        case .ioError: return "I/O error"
        case .inUse: return "source in use (a running VM)"
        case .protocolError: return "protocol error"
        case .authentication: return "authentication failed (pairing code, ESXi login, certificate pin, NBD TLS)"
        case .refused: return "guest not changed (unsafe or nothing to fix)"
        case .interrupted: return "interrupted"
        }
    }

    /// "Exit codes: 0 success, 1 unexpected failure, …" for the help texts.
    public static var helpLine: String {
        "Exit codes: " + allCases.map { "\($0.rawValue) \($0.summary)" }.joined(separator: ", ") + "."
    }
}

/// Turns any error into one clear line on standard error and an exit code.
public enum ErrorReporter {
    /// The exit code of `error`, decided by its type and code, never by its message.
    /// Nil for errors ferry does not know (ArgumentParser's own, or a bug).
    public static func knownExitCode(for error: any Error) -> FerryExit? {
        switch error {
        case let e as DiskError: return exitCode(for: e)
        case is FormatError: return .badData
        case is VMXError: return .badData
        case is VerificationError: return .verificationFailed
        case let e as TransferError:
            switch e.cause {
            case .disk(let disk)?: return exitCode(for: disk)
            case .format?: return .badData
            case nil: return exitCode(for: e.kind)
            }
        case let e as ProtocolError: return exitCode(for: TransferError(e, fromPeer: false).kind)
        case let e as ESXiError: return exitCode(for: e)
        case is CancellationError: return .interrupted
        case let e as NBDError:
            switch e.code {
            case .protocolViolation: return .protocolError
            case .refused, .badURI: return .noInput
            case .connection: return .network
            case .tls: return .authentication
            case .badSetting: return .usage
            }
        case let e as HiveEditError:
            // A hive ferry must not write (dirty, not a primary hive) is the guest's state; the rest is bad input.
            return e.code == .dirty || e.code == .notPrimary ? .refused : .badData
        case let e as FixError:
            switch e.code {
            case .noWindows, .refused: return .refused
            case .unsupported: return .cannotCreate
            case .badUndo: return .badData
            }
        default: return nil
        }
    }

    public static func exitCode(for error: any Error) -> FerryExit {
        knownExitCode(for: error) ?? .failure
    }

    static func exitCode(for error: DiskError) -> FerryExit {
        switch error.code {
        case .notFound, .permissionDenied:
            if error.operation == "create" || error.operation == "rename" { return .cannotCreate }
            return error.operation == "open" ? .noInput : .ioError
        case .isDirectory, .notADisk:
            return error.operation == "create" ? .cannotCreate : .noInput
        case .exists, .tooSmall, .inUse, .readOnly: return .cannotCreate
        case .cancelled: return .interrupted
        case .unsupported:
            // A target ferry cannot write in the format its name asks for is a target problem.
            return error.operation == "create" ? .cannotCreate : .badData
        case .noSpace, .outOfRange, .io, .closed: return .ioError
        }
    }

    /// ESXi (`esxi://`): each way a host can fail has its own code.
    static func exitCode(for error: ESXiError) -> FerryExit {
        switch error.code {
        case .authentication, .certificate: return .authentication
        case .protocolViolation: return .protocolError
        case .notFound: return .noInput
        case .badName: return .usage
        case .network: return .network
        case .inUse: return .inUse
        case .encrypted: return .badData
        }
    }

    static func exitCode(for kind: TransferError.Kind) -> FerryExit {
        switch kind {
        case .usage: return .usage
        case .authentication: return .authentication
        case .verification: return .verificationFailed
        case .io: return .ioError
        case .network: return .network
        case .protocolViolation: return .protocolError
        case .cancelled: return .interrupted
        }
    }

    public static func line(for error: any Error) -> String {
        "ferry: error: \(error)"
    }

    /// Prints the error once and exits with its code. ArgumentParser's own errors
    /// (usage, --help, --version) are printed the way ArgumentParser prints them.
    public static func exit(with error: any Error) -> Never {
        // A status passed on (serve --run's command): no message, even for 1.
        if let status = error as? ExitCode { Foundation.exit(status.rawValue) }
        if let code = knownExitCode(for: error) {
            try? FileHandle.standardError.write(contentsOf: Data((line(for: error) + "\n").utf8))
            Foundation.exit(code.rawValue)
        }
        if Ferry.exitCode(for: error) != .failure || error is CleanExit {
            Ferry.exit(withError: error)
        }
        try? FileHandle.standardError.write(contentsOf: Data((line(for: error) + "\n").utf8))
        Foundation.exit(FerryExit.failure.rawValue)
    }
}
