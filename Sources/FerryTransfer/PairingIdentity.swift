import Crypto
import _CryptoExtras
import Foundation
public import FerryProtocol
import NIOCore
public import NIOSSL
import X509

/// Turns a pairing code into the two TLS identities of a session.
///
/// ```
///  code (80 bits) ──scrypt(N=2^15, r=8, p=1, salt "ferry-pairing-v1")──▶ seed (32 bytes)
///  seed ──HKDF-SHA256(info "ferry v1 sender key #k")──▶ P-256 scalar ──▶ sender key
///  seed ──HKDF-SHA256(info "ferry v1 receiver key #k")──▶ P-256 scalar ──▶ receiver key
/// ```
/// Each side presents a self-signed certificate for its own key and accepts only a
/// peer whose certificate carries the other role's public key (pinned in NIOSSL's
/// custom verification callback). TLS 1.3 then gives an authenticated, encrypted,
/// forward-secret channel; a peer without the code cannot complete the handshake.
/// `k` starts at 0 and is bumped in the 2^-32 case that the HKDF output is not a
/// valid scalar. docs/protocol.md discusses the offline brute-force bound.
public struct PairingIdentity: Sendable {
    public enum Role: String, Sendable { case sender, receiver }

    public let role: Role
    public let certificate: NIOSSLCertificate
    public let privateKey: NIOSSLPrivateKey
    /// SubjectPublicKeyInfo (DER) the peer must present.
    public let expectedPeerSPKI: [UInt8]
    /// Our own public key (DER), for tests and diagnostics.
    public let ownSPKI: [UInt8]
    /// Built once: a context per connection would cost a receiver tens of ms before
    /// every ServerHello.
    public let context: NIOSSLContext

    public init(code: PairingCode, role: Role) throws {
        let seed = try Self.stretch(code)
        let own = try Self.key(seed: seed, role: role)
        let peer = try Self.key(seed: seed, role: role == .sender ? .receiver : .sender)
        self.role = role
        ownSPKI = Array(own.publicKey.derRepresentation)
        expectedPeerSPKI = Array(peer.publicKey.derRepresentation)
        privateKey = try NIOSSLPrivateKey(bytes: Array(own.pemRepresentation.utf8), format: .pem)
        certificate = try Self.selfSigned(own, role: role)
        context = try Self.tlsContext(role: role, certificate: certificate, privateKey: privateKey)
    }

    /// The memory-hard stretch: every guess an attacker makes costs ~32 MiB and tens of ms.
    static func stretch(_ code: PairingCode) throws -> SymmetricKey {
        try KDF.Scrypt.deriveKey(
            from: code.bytes, salt: Array("ferry-pairing-v1".utf8), outputByteCount: 32,
            rounds: 1 << 15, blockSize: 8, parallelism: 1)
    }

    static func key(seed: SymmetricKey, role: Role) throws -> P256.Signing.PrivateKey {
        for attempt in 0..<16 {
            let raw = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: seed, info: Array("ferry v1 \(role.rawValue) key #\(attempt)".utf8), outputByteCount: 32)
            if let key = try? raw.withUnsafeBytes({ try P256.Signing.PrivateKey(rawRepresentation: $0) }) {
                return key
            }
        }
        throw TransferError(.authentication, "could not derive a key from the pairing code")
    }

    static func selfSigned(_ key: P256.Signing.PrivateKey, role: Role) throws -> NIOSSLCertificate {
        let name = try DistinguishedName { CommonName("ferry \(role.rawValue)") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-86400), notValidAfter: now.addingTimeInterval(30 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: Certificate.Extensions(),
            issuerPrivateKey: .init(key))
        let pem = try certificate.serializeAsPEM().pemString
        return try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)
    }

    /// TLS 1.3 only, our certificate, peer certificate required (verified by `verify`).
    /// No trust roots: the pinned-key callback is the whole verification, and loading
    /// the system's CA bundle (≈ 150 certificates) cost ~70 ms per context.
    static func tlsContext(
        role: Role, certificate: NIOSSLCertificate, privateKey: NIOSSLPrivateKey
    ) throws -> NIOSSLContext {
        var config: TLSConfiguration
        switch role {
        case .receiver:
            config = TLSConfiguration.makeServerConfiguration(
                certificateChain: [.certificate(certificate)], privateKey: .privateKey(privateKey))
        case .sender:
            config = TLSConfiguration.makeClientConfiguration()
            config.certificateChain = [.certificate(certificate)]
            config.privateKey = .privateKey(privateKey)
        }
        config.minimumTLSVersion = .tlsv13
        config.certificateVerification = .noHostnameVerification
        config.trustRoots = .certificates([])
        return try NIOSSLContext(configuration: config)
    }

    /// The custom verification: the peer's leaf must carry exactly the pinned key.
    public func verify(_ chain: [NIOSSLCertificate]) -> NIOSSLVerificationResult {
        guard let leaf = chain.first, let spki = try? leaf.extractPublicKey().toSPKIBytes() else { return .failed }
        return spki == expectedPeerSPKI ? .certificateVerified : .failed
    }

    /// The TLS handler for one end of a connection, recording in `probe` a certificate
    /// that carried another key: the one proof that the peer holds a different code.
    func makeHandler(probe: PairingProbe) throws -> any ChannelHandler {
        let check: NIOSSLCustomVerificationCallback = { [self] chain, promise in
            let result = self.verify(chain)
            if result == .failed { probe.noteKeyMismatch() }
            promise.succeed(result)
        }
        switch role {
        case .receiver: return NIOSSLServerHandler(context: context, customVerificationCallback: check)
        case .sender: return try NIOSSLClientHandler(context: context, serverHostname: nil, customVerificationCallback: check)
        }
    }
}
