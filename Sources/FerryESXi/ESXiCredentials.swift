import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where the password and the trust decision come from: never the command line (it shows in
/// `ps` and shell history) and never a log.
public struct ESXiSettings: Sendable {
    /// A file whose first line is the password (`--password-file`).
    public var passwordFile: String?
    /// A pin given by the caller: wins over the URI's `?fingerprint=` and `FERRY_ESXI_FINGERPRINT`.
    public var fingerprint: CertificateFingerprint?
    /// `--insecure`.
    public var insecure: Bool = false
    /// `--force`: read a running VM's disk as it is now (crash-consistent at best) instead of
    /// refusing it.
    public var allowRunning: Bool = false
    public var session = ESXiSession.Options()

    public init(passwordFile: String? = nil, fingerprint: CertificateFingerprint? = nil, insecure: Bool = false) {
        self.passwordFile = passwordFile
        self.fingerprint = fingerprint
        self.insecure = insecure
    }

    /// The password: `passwordFile`, else `FERRY_ESXI_PASSWORD_FILE`, else `FERRY_ESXI_PASSWORD`,
    /// else a prompt on the terminal (echo off). Without any, a clear error.
    public func password(for location: ESXiLocation, environment: [String: String]? = nil) throws -> String {
        let environment = environment ?? ProcessInfo.processInfo.environment
        if let file = passwordFile ?? environment["FERRY_ESXI_PASSWORD_FILE"] {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ESXiError(.authentication, file, "cannot read the password file")
            }
            let text = String(decoding: data, as: UTF8.self)
            let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
            guard !password.isEmpty else { throw ESXiError(.authentication, file, "the password file's first line is empty") }
            return password
        }
        if let password = environment["FERRY_ESXI_PASSWORD"], !password.isEmpty { return password }
        if isatty(STDIN_FILENO) == 1, let typed = getpass("Password for \(location.user)@\(location.host): ") {
            let password = String(cString: typed)
            if !password.isEmpty { return password }
        }
        throw ESXiError(
            .authentication, location.display,
            "no password: pass --password-file FILE, or set FERRY_ESXI_PASSWORD or FERRY_ESXI_PASSWORD_FILE (ferry never takes it on the command line)")
    }

    /// The trust decision: a pin (flag, URI, `FERRY_ESXI_FINGERPRINT`), else `--insecure`
    /// (flag, URI, `FERRY_ESXI_INSECURE=1`), else the system CAs.
    public func trust(for location: ESXiLocation, environment: [String: String]? = nil) throws -> ESXiTrust {
        let environment = environment ?? ProcessInfo.processInfo.environment
        if let pin = fingerprint ?? location.fingerprint { return .pinned(pin) }
        if let text = environment["FERRY_ESXI_FINGERPRINT"], !text.isEmpty { return .pinned(try CertificateFingerprint(parsing: text)) }
        if insecure || location.insecure || environment["FERRY_ESXI_INSECURE"] == "1" { return .insecure }
        return .systemCAs
    }
}
