public import FerryProtocol

/// Why a transfer failed, sorted into the few outcomes an operator (or a script)
/// acts on differently. Each has its own exit code (docs/protocol.md, "Exit codes").
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

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The process exit code for this failure: the same table as every ferry command
    /// (README, `ferry --help`), based on sysexits(3).
    public var exitCode: Int32 {
        switch kind {
        case .usage: 64
        case .authentication: 77
        case .verification: 3
        case .io: 74
        case .network: 69
        case .protocolViolation: 76
        case .cancelled: 130
        }
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
