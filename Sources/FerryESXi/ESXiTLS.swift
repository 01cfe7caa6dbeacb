import Crypto
import NIOCore
import NIOPosix
import NIOSSL

/// How ferry decides to trust an ESXi host's certificate.
public enum ESXiTrust: Sendable, Equatable {
    /// The certificate whose SHA-256 fingerprint is this (ESXi's certificate is usually
    /// self-signed): only a connection presenting it is accepted.
    case pinned(CertificateFingerprint)
    /// The system's CA store, with the host name checked.
    case systemCAs
    /// Anything (`--insecure`): a warning is printed.
    case insecure
}

enum ESXiTLS {
    /// The TLS configuration for `trust`. A pin is checked here, in a handshake of ferry's own
    /// before any password is sent, and then enforced on every pooled connection by trusting
    /// that certificate alone (host names are not checked: the fingerprint names the host).
    static func configuration(_ trust: ESXiTrust, location: ESXiLocation, group: any EventLoopGroup) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .systemCAs:
            break
        case .insecure:
            tls.certificateVerification = .none
        case .pinned(let pin):
            let leaf = try serverCertificate(location, group: group)
            let seen = try fingerprint(of: leaf)
            guard seen == pin else {
                throw ESXiError(
                    .certificate, location.origin,
                    "the host's certificate has SHA-256 fingerprint \(seen), not the pinned \(pin); it is another host or the certificate was replaced. Nothing was sent")
            }
            tls.trustRoots = .certificates([leaf])
            tls.certificateVerification = .noHostnameVerification
        }
        return tls
    }

    /// The error for a certificate the system CAs do not trust: its fingerprint and the exact
    /// flag that pins it (ESXi's first-contact story: check the fingerprint on the host's console).
    static func untrusted(_ location: ESXiLocation, group: any EventLoopGroup, cause: any Error) -> ESXiError {
        guard let leaf = try? serverCertificate(location, group: group), let seen = try? fingerprint(of: leaf) else {
            return ESXiError(.certificate, location.origin, "TLS failed: \(cause)")
        }
        return ESXiError(
            .certificate, location.origin,
            "the system CAs do not trust the host's certificate (SHA-256 \(seen)); if the host's console shows this fingerprint, pin it: add ?fingerprint=\(seen) to the esxi:// URI (or pass --esxi-fingerprint \(seen), or set FERRY_ESXI_FINGERPRINT=\(seen))")
    }

    static func fingerprint(of certificate: NIOSSLCertificate) throws -> CertificateFingerprint {
        CertificateFingerprint(bytes: Array(SHA256.hash(data: try certificate.toDERBytes())))
    }

    /// The certificate the host presents, read in a handshake that trusts nothing and is
    /// abandoned once the certificate is seen.
    static func serverCertificate(_ location: ESXiLocation, group: any EventLoopGroup) throws -> NIOSSLCertificate {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: config)
        let seen = group.next().makePromise(of: NIOSSLCertificate.self)
        let isAddress = (try? SocketAddress(ipAddress: location.host, port: 0)) != nil
        let sni = isAddress ? nil : location.host
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(15))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(
                        context: context, serverHostname: sni,
                        customVerificationCallback: { certificates, verdict in
                            if let leaf = certificates.first {
                                seen.succeed(leaf)
                            } else {
                                seen.fail(ESXiError(.certificate, location.origin, "the host presented no certificate"))
                            }
                            verdict.succeed(.failed)  // seen is all ferry wanted from this handshake
                        })
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        do {
            let channel = try bootstrap.connect(host: location.host, port: location.port).wait()
            channel.closeFuture.whenComplete { _ in
                seen.fail(ESXiError(.certificate, location.origin, "the connection closed before the host presented a certificate"))
            }
            defer { channel.close(promise: nil) }
            return try seen.futureResult.wait()
        } catch let error as ESXiError {
            throw error
        } catch {
            seen.fail(error)
            throw ESXiError(.network, location.origin, "cannot connect: \(error)")
        }
    }
}
