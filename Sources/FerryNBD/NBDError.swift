/// An NBD failure that is not a plain disk error: the peer broke the protocol, refused what ferry
/// asked, or could not be reached. Disk errors the server reports (EIO on a read) are `DiskError`s.
public struct NBDError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// The peer sent something the protocol forbids (bad magic, unknown cookie, a chunk past its request).
        case protocolViolation
        /// The server answered an option with an error (no such export, TLS required…).
        case refused
        /// The connection could not be made or broke.
        case connection
        /// A URI ferry cannot use (bad syntax, an unknown parameter).
        case badURI
        /// TLS could not be had: the server refused STARTTLS or demands it, the certificates
        /// are missing or unreadable, or the TLS handshake failed (a certificate not trusted).
        case tls
        /// A setting ferry cannot use (`FERRY_NBD_CONNECTIONS` out of range).
        case badSetting
    }

    public var code: Code
    /// The endpoint: the URI or the peer's address.
    public var peer: String
    public var detail: String

    public init(_ code: Code, _ peer: String, _ detail: String) {
        self.code = code
        self.peer = peer
        self.detail = detail
    }

    public var description: String {
        switch code {
        case .protocolViolation: return "\(peer): NBD protocol violation: \(detail)"
        case .refused: return "\(peer): the NBD server refused: \(detail)"
        case .connection: return "\(peer): NBD connection failed: \(detail)"
        case .badURI: return "\(peer): bad NBD URI: \(detail)"
        case .tls: return "\(peer): NBD TLS: \(detail)"
        case .badSetting: return "\(peer): bad NBD setting: \(detail)"
        }
    }
}
