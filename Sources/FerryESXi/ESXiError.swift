/// Why talking to an ESXi host failed. Each case maps onto one `FerryExit` code in FerryCommands.
public struct ESXiError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// The host refused the user name and password (HTTP 401 after a fresh Basic login,
        /// or SOAP InvalidLogin).
        case authentication
        /// The certificate's SHA-256 fingerprint differs from the pin, or no pin was given
        /// for a certificate the system CAs do not trust.
        case certificate
        /// The host answered something that is not the file asked for: an HTML page,
        /// a 200 to a Range request, a short body, a bad SOAP reply.
        case protocolViolation
        /// The file, VM or datastore does not exist (HTTP 404, an unknown VM name).
        case notFound
        /// The URI or a datastore path is malformed or leaves its datastore (`..`, absolute).
        case badName
        /// The VM is running and its disk would change while ferry reads it.
        case inUse
        /// The disk is encrypted by vSphere (VM encryption): its files hold ciphertext that only
        /// the host's key provider can open.
        case encrypted
        /// The network failed (connect, reset, timeout) after the retries allowed.
        case network
    }

    public var code: Code
    /// What was being read: the URL without credentials, or the host.
    public var subject: String
    public var detail: String

    public init(_ code: Code, _ subject: String, _ detail: String) {
        self.code = code
        self.subject = subject
        self.detail = detail
    }

    public var description: String { "\(subject): \(detail)" }
}
