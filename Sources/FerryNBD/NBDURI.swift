/// An NBD URI (the NBD URI spec, NetworkBlockDevice/nbd `doc/uri.md`): `nbd://HOST[:PORT]/EXPORT`
/// or `nbd+unix:///EXPORT?socket=PATH`, and their TLS forms `nbds://` and `nbds+unix://` with
/// `tls-certificates=DIR`, `tls-verify-peer=0|1`, `tls-hostname=NAME` (`NBDClientTLS`).
public struct NBDURI: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    public var exportName: String
    /// TLS, required (`nbds`): a server that will not start it is refused, never used in plaintext.
    public var tls: NBDClientTLS?

    public init(endpoint: Endpoint, exportName: String, tls: NBDClientTLS? = nil) {
        self.endpoint = endpoint
        self.exportName = exportName
        self.tls = tls
    }

    /// The schemes ferry registers.
    public static let schemes = ["nbd", "nbd+unix", "nbds", "nbds+unix"]

    public init(parsing text: String) throws {
        func bad(_ why: String) -> NBDError { NBDError(.badURI, text, why) }
        guard let range = text.range(of: "://") else { throw bad("no scheme") }
        let scheme = text[..<range.lowerBound].lowercased()
        var rest = Substring(text[range.upperBound...])
        guard Self.schemes.contains(scheme) else { throw bad("the scheme must be nbd, nbd+unix, nbds or nbds+unix") }
        let isUnix = scheme.hasSuffix("+unix")
        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { throw bad("query parameter \"\(pair)\" has no value") }
                query[try Self.decode(String(parts[0]), text)] = try Self.decode(String(parts[1]), text)
            }
            rest = rest[..<q]
        }
        var authority: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            exportName = try Self.decode(String(rest[rest.index(after: slash)...]), text)
        } else {
            authority = rest
            exportName = ""
        }
        var username: String?
        if let at = authority.lastIndex(of: "@") {
            guard scheme.hasPrefix("nbds") else { throw bad("a user name is for TLS-PSK: write nbds:// or nbds+unix://") }
            username = try Self.decode(String(authority[..<at]), text)
            authority = authority[authority.index(after: at)...]
        }
        tls = scheme.hasPrefix("nbds") ? try Self.tls(taking: &query, text) : nil
        tls?.username = username
        if tls == nil, let key = query.keys.sorted().first(where: { $0.hasPrefix("tls-") }) {
            throw bad("\(key) needs TLS: write nbds:// or nbds+unix://")
        }
        if isUnix {
            guard authority.isEmpty else { throw bad("\(scheme):// takes no host (write \(scheme):///EXPORT?socket=PATH)") }
            guard let socket = query.removeValue(forKey: "socket"), !socket.isEmpty else { throw bad("\(scheme):// needs ?socket=PATH") }
            endpoint = .unix(path: socket)
        } else {
            var host = String(authority)
            var port = NBD.defaultPort
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { throw bad("an IPv6 address without its ]") }
                let after = host[host.index(after: close)...]
                if after.hasPrefix(":") { port = try Self.port(String(after.dropFirst()), text) } else if !after.isEmpty { throw bad("text after the IPv6 address") }
                host = String(host[host.index(after: host.startIndex)..<close])
            } else if let colon = host.lastIndex(of: ":") {
                port = try Self.port(String(host[host.index(after: colon)...]), text)
                host = String(host[..<colon])
            }
            guard !host.isEmpty else { throw bad("no host") }
            endpoint = .tcp(host: host, port: port)
        }
        if let unknown = query.keys.sorted().first { throw bad("unsupported parameter \"\(unknown)\"") }
    }

    /// The TLS parameters of an `nbds` URI, taken out of `query`.
    private static func tls(taking query: inout [String: String], _ text: String) throws -> NBDClientTLS {
        var tls = NBDClientTLS(certificates: query.removeValue(forKey: "tls-certificates"), hostname: query.removeValue(forKey: "tls-hostname"))
        if let verify = query.removeValue(forKey: "tls-verify-peer") {
            // libnbd's booleans.
            switch verify.lowercased() {
            case "1", "true", "on", "yes": tls.verifyPeer = true
            case "0", "false", "off", "no": tls.verifyPeer = false
            default: throw NBDError(.badURI, text, "tls-verify-peer=\(verify) is not a boolean (0 or 1)")
            }
        }
        tls.pskFile = query.removeValue(forKey: "tls-psk-file")
        if tls.pskFile != nil, tls.certificates != nil { throw NBDError(.badURI, text, "tls-psk-file and tls-certificates exclude each other") }
        if let type = query.removeValue(forKey: "tls-type")?.lowercased(), type != (tls.pskFile == nil ? "x509" : "psk") {
            throw NBDError(.badURI, text, "tls-type=\(type): ferry speaks X.509 (tls-certificates) and PSK (tls-psk-file), not anonymous TLS")
        }
        return tls
    }

    private static func port(_ s: String, _ text: String) throws -> Int {
        guard let p = Int(s), (1...65535).contains(p) else { throw NBDError(.badURI, text, "port \"\(s)\" is not 1–65535") }
        return p
    }

    /// Percent-decoding (RFC 3986 §2.1).
    private static func decode(_ s: String, _ text: String) throws -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else {
                    throw NBDError(.badURI, text, "a bad %-escape")
                }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(Unicode.Scalar(b))
            if b < 128, c.isLetter || c.isNumber || "-._~/".contains(c) { out.append(c) } else { out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) }
        }
        return out
    }

    public var description: String {
        let s = tls == nil ? "" : "s"
        var query: [String] = []
        let text: String
        let user = tls?.username.map { Self.encode($0) + "@" } ?? ""
        switch endpoint {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            text = "nbd\(s)://\(user)\(h)\(port == NBD.defaultPort ? "" : ":\(port)")/\(Self.encode(exportName))"
        case .unix(let path):
            text = "nbd\(s)+unix://\(user)/\(Self.encode(exportName))"
            query.append("socket=" + Self.encode(path))
        }
        if let tls {
            if let dir = tls.certificates { query.append("tls-certificates=" + Self.encode(dir)) }
            if let file = tls.pskFile { query.append("tls-psk-file=" + Self.encode(file)) }
            if let name = tls.hostname { query.append("tls-hostname=" + Self.encode(name)) }
            if !tls.verifyPeer { query.append("tls-verify-peer=false") }
        }
        return query.isEmpty ? text : text + "?" + query.joined(separator: "&")
    }
}
