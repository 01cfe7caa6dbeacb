public import FerryBinary
public import FerryDisk
public import FerryProtocol

/// Why a transfer failed, sorted into the few outcomes an operator (or a script)
/// acts on differently. The exit code of each is in the one table every ferry
/// command uses (`FerryExit` in FerryCommands; README, "Exit codes").
///
/// A failure that began as a `DiskError` or `FormatError` (a target that is too small,
/// a source that does not exist, a damaged image) keeps that error as `cause`, so its
/// exit code is decided by its code and operation, not by a message.
public struct TransferError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Wrong pairing code, or a peer that cannot prove it holds it.
        case authentication
        /// A block or the disk digest did not match: the copy is not trustworthy.
        case verification
        /// Reading the source or writing/flushing the target failed.
        case io
        /// The connection could not be made or was lost.
        case network
        /// The peer broke the protocol, or the two sides disagree (disk count, version).
        case protocolViolation
        /// Bad command-line input (malformed code, bad address).
        case usage
        /// Interrupted by the operator.
        case cancelled
    }

    /// The error a local failure began as, when it was a disk or format error.
    public enum Cause: Sendable {
        case disk(DiskError)
        case format(FormatError)
    }

    public var kind: Kind
    public var message: String
    public var cause: Cause?

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// A local disk failure (open, read, write, flush), its code kept for the exit status.
    public init(_ error: DiskError) {
        self.init(error.code == .cancelled ? .cancelled : .io, error.description)
        cause = .disk(error)
    }

    /// A damaged or hostile image on this side.
    public init(_ error: FormatError) {
        self.init(.io, error.description)
        cause = .format(error)
    }

    public var description: String { message }

    /// Maps a protocol error (ours or the peer's) onto a transfer outcome.
    public init(_ error: ProtocolError, fromPeer: Bool) {
        let prefix = fromPeer ? "the peer reported: " : ""
        switch error.code {
        case .verification: self.init(.verification, prefix + error.detail)
        case .io: self.init(.io, prefix + error.detail)
        case .authentication: self.init(.authentication, prefix + error.detail)
        case .malformedCode: self.init(.usage, prefix + error.detail)
        case .cancelled: self.init(.cancelled, prefix + error.detail)
        case .protocolViolation, .oversizeFrame, .version, .outOfRange, .mismatch, .unknown:
            self.init(.protocolViolation, prefix + error.detail)
        }
    }
}
