import Foundation
import NIOSSL

/// TLS-PSK as qemu-nbd (`tls-creds-psk`), nbdkit (`--tls-psk`) and libnbd (`tls-psk-file`) do
/// it: a file of `USERNAME:HEXKEY` lines (GnuTLS's `psktool` format), no certificates.
///
/// BoringSSL (under NIOSSL) does PSK only in TLS 1.2, with the PSK cipher suites named in
/// `cipherSuites`; GnuTLS peers fall back to 1.2 when ferry offers no more.
enum NBDPSK {
    /// ECDHE first (forward secrecy), then plain PSK; all are in GnuTLS's NORMAL+PSK list.
    static let cipherSuites = "ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES128-CBC-SHA:ECDHE-PSK-AES256-CBC-SHA:PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA"
    /// A key file bigger than this is not a key file.
    static let maxFileSize = 1 << 20

    /// The keys of `path` by user name. Throws `NBDError.tls` naming the line that is malformed.
    static func keys(_ path: String, peer: String) throws -> [String: [UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw NBDError(.tls, peer, "cannot read the PSK file \(path)") }
        guard data.count <= maxFileSize else { throw NBDError(.tls, peer, "the PSK file \(path) holds \(data.count) bytes; a key file is smaller") }
        var keys: [String: [UInt8]] = [:]
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            guard let colon = text.lastIndex(of: ":"), colon != text.startIndex, let key = hex(text[text.index(after: colon)...]), !key.isEmpty else {
                throw NBDError(.tls, peer, "line \(number + 1) of the PSK file \(path) is not USERNAME:HEXKEY")
            }
            keys[String(text[..<colon])] = key
        }
        guard !keys.isEmpty else { throw NBDError(.tls, peer, "the PSK file \(path) holds no key") }
        return keys
    }

    static func hex(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }

    /// A client configuration presenting `username`'s key from `path`.
    static func client(_ path: String, username: String, peer: String) throws -> TLSConfiguration {
        guard let key = try keys(path, peer: peer)[username] else {
            throw NBDError(.tls, peer, "the PSK file \(path) has no key for user \"\(username)\" (the URI's user name: nbds://USER@HOST/…)")
        }
        var config = TLSConfiguration.makePreSharedKeyConfiguration()
        config.minimumTLSVersion = .tlsv12
        config.maximumTLSVersion = .tlsv12
        config.cipherSuites = cipherSuites
        let secret = NIOSSLSecureBytes(key)
        config.pskClientProvider = { _ in PSKClientIdentityResponse(key: secret, identity: username) }
        return config
    }

    /// A server configuration accepting every user of `path`.
    static func server(_ path: String, peer: String) throws -> TLSConfiguration {
        let keys = try keys(path, peer: peer)
        var config = TLSConfiguration.makePreSharedKeyConfiguration()
        config.minimumTLSVersion = .tlsv12
        config.maximumTLSVersion = .tlsv12
        config.cipherSuites = cipherSuites
        config.pskServerProvider = { context in
            guard let key = keys[context.clientIdentity] else { throw NBDError(.tls, peer, "no PSK for user \"\(context.clientIdentity)\"") }
            return PSKServerIdentityResponse(key: NIOSSLSecureBytes(key))
        }
        return config
    }
}
