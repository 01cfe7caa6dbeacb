/// What an `esxi://` URI names: a host, a user, and a file in a datastore or a VM by name.
///
///     esxi://root@esx1.example/[datastore1] web/web.vmdk      one disk (descriptor or sparse file)
///     esxi://root@esx1.example/[datastore1] web/web.vmx       the VM's disks, through its .vmx
///     esxi://root@esx1.example:8443/web?fingerprint=AB:CD:…   a VM by name (vSphere SOAP API)
///
/// The path may be percent-encoded (`%5Bdatastore1%5D%20web/web.vmdk`). Query items:
/// `fingerprint` (SHA-256 of the host certificate, hex with or without colons), `dc` (the
/// datacenter, `ha-datacenter` on a standalone host), `insecure=1`, `disk=N` (which disk of a VM
/// named by name).
public struct ESXiLocation: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        /// `[datastore] path`: a file in a datastore, `path` confined to it (no `..`, not absolute).
        case file(datastore: String, path: String)
        /// A VM by its inventory name.
        case vm(name: String)
        /// The host alone (`ferry esxi ls`): names no disk.
        case host
    }

    public var user: String
    public var host: String
    public var port: Int
    public var target: Target
    public var datacenter: String
    public var fingerprint: CertificateFingerprint?
    public var insecure: Bool
    /// `?disk=N`: which of a VM's disks (1-based, in the VM's order) a VM name means.
    public var disk: Int? = nil

    /// `https://host:port`, for requests and messages (never holds credentials).
    public var origin: String { port == 443 ? "https://\(Self.bracketed(host))" : "https://\(Self.bracketed(host)):\(port)" }

    public init(user: String, host: String, port: Int = 443, target: Target, datacenter: String = "ha-datacenter",
                fingerprint: CertificateFingerprint? = nil, insecure: Bool = false) {
        self.user = user
        self.host = host
        self.port = port
        self.target = target
        self.datacenter = datacenter
        self.fingerprint = fingerprint
        self.insecure = insecure
    }

    /// Parses `esxi://USER@HOST[:PORT]/TARGET[?QUERY]`; throws `.badName` naming what is wrong.
    public init(parsing uri: String) throws {
        func bad(_ why: String) -> ESXiError { ESXiError(.badName, uri, why) }
        guard let schemeEnd = uri.range(of: "://"), uri[..<schemeEnd.lowerBound].lowercased() == "esxi" else {
            throw bad("an ESXi URI starts with esxi://")
        }
        var rest = Substring(uri[schemeEnd.upperBound...])
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        guard let at = authority.lastIndex(of: "@"), at != authority.startIndex else {
            throw bad("no user name: write esxi://USER@HOST/… (the password never goes in the URI)")
        }
        let userPart = authority[..<at]
        guard !userPart.contains(":") else {
            throw bad("a password in the URI would show in the process list and logs; use --password-file or FERRY_ESXI_PASSWORD")
        }
        user = try Self.percentDecoded(userPart, uri)
        (host, port) = try Self.hostAndPort(authority[authority.index(after: at)...], uri)
        let path = slash == rest.endIndex ? "" : try Self.percentDecoded(rest[rest.index(after: slash)...], uri)
        target = path.isEmpty ? .host : try Self.target(path, uri)
        datacenter = "ha-datacenter"
        fingerprint = nil
        insecure = false
        for item in query.split(separator: "&") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(pair[0]).lowercased()
            let value = try Self.percentDecoded(pair.count > 1 ? pair[1] : "", uri)
            switch key {
            case "fingerprint": fingerprint = try CertificateFingerprint(parsing: value)
            case "dc", "dcpath": datacenter = value
            case "insecure": insecure = value.isEmpty || value == "1" || value == "true"
            case "disk":
                guard let n = Int(value), n >= 1 else { throw bad("disk=\(value): a VM's disks are numbered from 1") }
                disk = n
            default: throw bad("unknown query item \"\(key)\" (known: fingerprint, dc, insecure, disk)")
            }
        }
    }

    /// The URI without its query, for messages.
    public var display: String {
        let what: String
        switch target {
        case .file(let ds, let path): what = "[\(ds)] \(path)"
        case .vm(let name): what = name
        case .host: what = ""
        }
        return "esxi://\(user)@\(Self.bracketed(host))\(port == 443 ? "" : ":\(port)")" + (what.isEmpty ? "" : "/\(what)")
    }

    /// A host for `ferry esxi`: `esxi://USER@HOST[:PORT][?QUERY]` or `USER@HOST[:PORT]`.
    public init(parsingHost text: String) throws {
        let uri = text.lowercased().hasPrefix("esxi://") ? text : "esxi://" + text
        try self.init(parsing: uri)
        guard target == .host else {
            throw ESXiError(.badName, text, "name the host alone (esxi://USER@HOST), not a file or VM on it")
        }
    }

    /// A file name as the vSphere API writes it, `[datastore] dir/file.vmdk`: its datastore and
    /// its path, confined to the datastore like every other name ferry reads.
    public static func datastorePath(_ text: String, subject: String) throws -> (datastore: String, path: String) {
        guard case .file(let datastore, let path) = try target(text, subject) else {
            throw ESXiError(.badName, subject, "\"\(text)\" is not a \"[datastore] dir/file\" name")
        }
        return (datastore, path)
    }

    /// The same location naming another target (a VM's disk file).
    public func with(_ target: Target) -> ESXiLocation {
        var copy = self
        copy.target = target
        return copy
    }

    /// Checks a datastore-relative path: non-empty, relative, without `..` components.
    /// The same rule confines every file a VMDK names (ESXi's absolute parent hints are looked up
    /// by their base name, as on a local copy).
    public static func confined(_ path: String, _ subject: String) throws -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !path.hasPrefix("/"), !parts.isEmpty, !parts.contains("..") else {
            throw ESXiError(.badName, subject, "the datastore path \"\(path)\" leaves its datastore (absolute, empty or with ..); ferry reads only files inside the datastore")
        }
        return parts.joined(separator: "/")
    }

    private static func target(_ path: String, _ uri: String) throws -> Target {
        let trimmed = path.drop(while: { $0 == " " })
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else {
                throw ESXiError(.badName, uri, "an unclosed [datastore] in \"\(path)\"")
            }
            let datastore = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            guard !datastore.isEmpty, !datastore.contains("/") else {
                throw ESXiError(.badName, uri, "\"[\(datastore)]\" is not a datastore name")
            }
            let file = String(trimmed[trimmed.index(after: close)...].drop(while: { $0 == " " }))
            return .file(datastore: datastore, path: try confined(file, uri))
        }
        guard !path.isEmpty, !path.contains("/") else {
            throw ESXiError(.badName, uri, "\"\(path)\" is neither \"[datastore] dir/file\" nor a VM name")
        }
        return .vm(name: path)
    }

    private static func hostAndPort(_ text: Substring, _ uri: String) throws -> (String, Int) {
        var host = text
        var portText: Substring?
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let after = host[host.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : nil
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw ESXiError(.badName, uri, "no host name") }
        guard let portText else { return (String(host), 443) }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ESXiError(.badName, uri, "\"\(portText)\" is not a port number")
        }
        return (String(host), port)
    }

    static func percentDecoded(_ text: Substring, _ uri: String) throws -> String {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            let hex = utf8.prefix(2)
            guard hex.count == 2, let value = UInt8(String(decoding: hex, as: UTF8.self), radix: 16) else {
                throw ESXiError(.badName, uri, "a bad percent escape in \"\(text)\"")
            }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Percent-encodes a path for a /folder URL: everything but unreserved characters and `/`.
    static func percentEncoded(_ text: String, keepSlash: Bool = true) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if byte < 0x80, c.isLetter || c.isNumber || "-._~".contains(c) || (keepSlash && c == "/") {
                out.append(c)
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    private static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

/// A SHA-256 certificate fingerprint, the way ESXi's console and `openssl x509 -fingerprint
/// -sha256` print it (`AB:CD:…`, 32 bytes).
public struct CertificateFingerprint: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Accepts hex with or without colons, either case, optionally prefixed `sha256:`.
    public init(parsing text: String) throws {
        var hex = text.lowercased()
        if hex.hasPrefix("sha256:") { hex.removeFirst(7) }
        hex.removeAll { $0 == ":" }
        let digits = Array(hex.utf8)
        guard digits.count == 64 else {
            throw ESXiError(.badName, text, "a SHA-256 fingerprint is 32 bytes in hex (64 digits, colons optional); this has \(digits.count) digits")
        }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let b = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else {
                throw ESXiError(.badName, text, "\"\(text)\" is not hexadecimal")
            }
            bytes.append(b)
        }
        self.bytes = bytes
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }.joined(separator: ":")
    }
}
