/// An NBD URI (the NBD URI spec, NetworkBlockDevice/nbd `doc/uri.md`): `nbd://HOST[:PORT]/EXPORT`
/// or `nbd+unix:///EXPORT?socket=PATH`. TLS schemes (`nbds`, `nbds+unix`) are recognised and refused.
public struct NBDURI: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    public var exportName: String

    public init(endpoint: Endpoint, exportName: String) {
        self.endpoint = endpoint
        self.exportName = exportName
    }

    /// The schemes ferry registers (the TLS ones only to refuse them clearly).
    public static let schemes = ["nbd", "nbd+unix", "nbds", "nbds+unix"]

    public init(parsing text: String) throws {
        func bad(_ why: String) -> NBDError { NBDError(.badURI, text, why) }
        guard let range = text.range(of: "://") else { throw bad("no scheme") }
        let scheme = text[..<range.lowerBound].lowercased()
        var rest = Substring(text[range.upperBound...])
        if scheme.hasPrefix("nbds") { throw bad("TLS (\(scheme)://) is not supported yet; use nbd:// or nbd+unix://") }
        guard scheme == "nbd" || scheme == "nbd+unix" else { throw bad("the scheme must be nbd or nbd+unix") }
        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { throw bad("query parameter \"\(pair)\" has no value") }
                query[try Self.decode(String(parts[0]), text)] = try Self.decode(String(parts[1]), text)
            }
            rest = rest[..<q]
        }
        let authority: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            exportName = try Self.decode(String(rest[rest.index(after: slash)...]), text)
        } else {
            authority = rest
            exportName = ""
        }
        if authority.contains("@") { throw bad("user names are only for TLS, which ferry does not speak yet") }
        if scheme == "nbd+unix" {
            guard authority.isEmpty else { throw bad("nbd+unix:// takes no host (write nbd+unix:///EXPORT?socket=PATH)") }
            guard let socket = query.removeValue(forKey: "socket"), !socket.isEmpty else { throw bad("nbd+unix:// needs ?socket=PATH") }
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
        switch endpoint {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "nbd://\(h)\(port == NBD.defaultPort ? "" : ":\(port)")/\(Self.encode(exportName))"
        case .unix(let path):
            return "nbd+unix:///\(Self.encode(exportName))?socket=\(Self.encode(path))"
        }
    }
}
