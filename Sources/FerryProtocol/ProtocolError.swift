/// A protocol-level failure: what went wrong, in words a person can act on.
/// The code travels on the wire in `Message.error` (u16) so the peer can tell an
/// authentication problem from a full disk; docs/protocol.md lists the values.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: UInt16, Sendable, Equatable {
        /// The peer broke the protocol: bad frame, bad message, wrong state.
        case protocolViolation = 1
        /// Frame longer than `WireLimits.maxFrame`.
        case oversizeFrame = 2
        /// Unsupported protocol version.
        case version = 3
        /// An extent outside the disk, misaligned, overlapping, or a size that changed.
        case outOfRange = 4
        /// A block's bytes do not match its hash, or the disk digests differ.
        case verification = 5
        /// The receiving side failed to write or flush.
        case io = 6
        /// Pairing failed: wrong code, or a peer not holding the code.
        case authentication = 7
        /// The pairing code is not well-formed.
        case malformedCode = 8
        /// The two sides were started with different disk lists or settings.
        case mismatch = 9
        /// The operator interrupted the transfer.
        case cancelled = 10
        /// Unknown code received from a peer.
        case unknown = 0xFFFF
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { detail }
}
