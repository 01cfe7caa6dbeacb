import Foundation
import NIOCore
import NIOSSL

/// TLS as an NBD client asks for it (`nbds://`, `nbds+unix://`; proto.md "TLS support", the NBD
/// URI spec's `tls-*` query parameters as libnbd reads them). X.509 only; the files carry the
/// names libnbd, qemu and nbdkit give them (GnuTLS's `x509` credentials layout):
///
/// ```
/// DIR/ca-cert.pem       the CAs that sign the server's certificate (absent: the system's CAs)
/// DIR/client-cert.pem   the client's certificate, for a server that verifies its clients
/// DIR/client-key.pem    its private key (both or neither)
/// ```
public struct NBDClientTLS: Sendable, Equatable {
    public static let caFile = "ca-cert.pem"
    public static let certificateFile = "client-cert.pem"
    public static let keyFile = "client-key.pem"

    /// `tls-certificates=DIR`; nil: the system's CAs and no client certificate.
    public var certificates: String?
    /// `tls-verify-peer` (default true): check the server's certificate chain (and its name
    /// against `hostname`, or the TCP host, when there is one).
    public var verifyPeer: Bool
    /// `tls-hostname`: the name the server's certificate must carry (a Unix socket has none).
    public var hostname: String?
    /// `tls-psk-file=FILE`: TLS-PSK instead of certificates (`NBDPSK`), as `username`.
    public var pskFile: String?
    /// The URI's user name (`nbds://USER@HOST/…`): whose key of `pskFile` to use.
    public var username: String?

    public init(certificates: String? = nil, verifyPeer: Bool = true, hostname: String? = nil, pskFile: String? = nil, username: String? = nil) {
        self.certificates = certificates
        self.verifyPeer = verifyPeer
        self.hostname = hostname
        self.pskFile = pskFile
        self.username = username
    }
}

/// TLS as `ferry serve --tls-certificates DIR` offers it: TLS-required ("FORCEDTLS", like
/// `qemu-nbd --tls-creds` and `nbdkit --tls=require`). The files:
///
/// ```
/// DIR/server-cert.pem   the server's certificate (the chain, leaf first)
/// DIR/server-key.pem    its private key
/// DIR/ca-cert.pem       the CAs whose client certificates are accepted (needed for verifyPeer)
/// ```
public struct NBDServerTLS: Sendable, Equatable {
    public static let caFile = "ca-cert.pem"
    public static let certificateFile = "server-cert.pem"
    public static let keyFile = "server-key.pem"

    /// The certificates' directory (X.509); nil with `pskFile`.
    public var certificates: String?
    /// Demand a client certificate signed by `DIR/ca-cert.pem` (`--tls-verify-peer`).
    public var verifyPeer: Bool
    /// `--tls-psk FILE`: TLS-PSK with the users and keys of FILE instead of certificates.
    public var pskFile: String?

    public init(certificates: String? = nil, verifyPeer: Bool = false, pskFile: String? = nil) {
        self.certificates = certificates
        self.verifyPeer = verifyPeer
        self.pskFile = pskFile
    }
}

/// What a connection needs to start TLS once STARTTLS is acknowledged: one context for every
/// connection (certificates read once, at open), the name to send as SNI.
struct NBDTLSUpgrade: Sendable {
    let context: NIOSSLContext
    let serverHostname: String?
    /// What to check when the handshake fails, for the error message.
    var failureHint = "is the server's certificate signed by a CA in tls-certificates' ca-cert.pem, and issued for this host?"

    /// The handler to put in front of the NBD handler (client side).
    func clientHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
    }

    func serverHandler() -> NIOSSLServerHandler { NIOSSLServerHandler(context: context) }
}

enum NBDTLSFiles {
    /// `dir/name` when it exists, nil otherwise.
    static func optional(_ dir: String, _ name: String) -> String? {
        let path = (dir as NSString).appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static func required(_ dir: String, _ name: String, _ peer: String, why: String) throws -> String {
        guard let path = optional(dir, name) else { throw NBDError(.tls, peer, "\(dir) has no \(name) (\(why))") }
        return path
    }

    static func certificates(_ path: String, _ peer: String) throws -> [NIOSSLCertificate] {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(path)
            guard !chain.isEmpty else { throw NBDError(.tls, peer, "\(path) holds no PEM certificate") }
            return chain
        } catch let error as NBDError {
            throw error
        } catch {
            throw NBDError(.tls, peer, "cannot read the certificates in \(path): \(error)")
        }
    }

    static func key(_ path: String, _ peer: String) throws -> NIOSSLPrivateKey {
        do { return try NIOSSLPrivateKey(file: path, format: .pem) } catch {
            throw NBDError(.tls, peer, "cannot read the private key in \(path): \(error)")
        }
    }

    static func context(_ configuration: TLSConfiguration, _ peer: String) throws -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw NBDError(.tls, peer, "the TLS configuration is refused: \(error)")
        }
    }
}

extension NBDClientTLS {
    /// Reads the files and builds the context; `tcpHost` is the URI's host (nil over a Unix socket).
    func upgrade(tcpHost: String?, peer: String) throws -> NBDTLSUpgrade {
        if let pskFile {
            let config = try NBDPSK.client(pskFile, username: username ?? NSUserName(), peer: peer)
            return NBDTLSUpgrade(
                context: try NBDTLSFiles.context(config, peer), serverHostname: nil,
                failureHint: "does the server hold this key for this user (the URI's user name, else the login name)?")
        }
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv12  // proto.md "TLS versions": 1.2 or later
        if let dir = certificates {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw NBDError(.tls, peer, "tls-certificates=\(dir) is not a directory")
            }
            if let ca = NBDTLSFiles.optional(dir, Self.caFile) {
                config.trustRoots = .certificates(try NBDTLSFiles.certificates(ca, peer))
            }
            let cert = NBDTLSFiles.optional(dir, Self.certificateFile), key = NBDTLSFiles.optional(dir, Self.keyFile)
            switch (cert, key) {
            case (let cert?, let key?):
                config.certificateChain = try NBDTLSFiles.certificates(cert, peer).map { .certificate($0) }
                config.privateKey = .privateKey(try NBDTLSFiles.key(key, peer))
            case (nil, nil):
                break
            default:
                throw NBDError(.tls, peer, "\(dir) has one of \(Self.certificateFile) and \(Self.keyFile) without the other")
            }
        }
        let name = hostname ?? tcpHost
        if !verifyPeer {
            config.certificateVerification = .none
        } else if name == nil {
            config.certificateVerification = .noHostnameVerification  // a Unix socket: the chain only
        }
        // SNI takes names only; an IP address is checked against the certificate's IP entries.
        let isAddress = name.map { (try? SocketAddress(ipAddress: $0, port: 0)) != nil } ?? false
        return NBDTLSUpgrade(context: try NBDTLSFiles.context(config, peer), serverHostname: isAddress ? nil : name)
    }
}

extension NBDServerTLS {
    /// Reads the files and builds the context every connection shares.
    func upgrade() throws -> NBDTLSUpgrade {
        if let pskFile {
            return NBDTLSUpgrade(context: try NBDTLSFiles.context(try NBDPSK.server(pskFile, peer: pskFile), pskFile), serverHostname: nil)
        }
        guard let certificates else { throw NBDError(.tls, "ferry serve", "TLS needs a certificates directory or a PSK file") }
        let peer = certificates
        let cert = try NBDTLSFiles.required(certificates, Self.certificateFile, peer, why: "the server's certificate")
        let key = try NBDTLSFiles.required(certificates, Self.keyFile, peer, why: "the server's private key")
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NBDTLSFiles.certificates(cert, peer).map { .certificate($0) },
            privateKey: .privateKey(try NBDTLSFiles.key(key, peer)))
        config.minimumTLSVersion = .tlsv12
        if verifyPeer {
            let ca = try NBDTLSFiles.required(certificates, Self.caFile, peer, why: "--tls-verify-peer checks clients against it")
            config.trustRoots = .certificates(try NBDTLSFiles.certificates(ca, peer))
            config.certificateVerification = .noHostnameVerification  // a client certificate is required
        } else {
            config.certificateVerification = .none
        }
        return NBDTLSUpgrade(context: try NBDTLSFiles.context(config, peer), serverHostname: nil)
    }
}
