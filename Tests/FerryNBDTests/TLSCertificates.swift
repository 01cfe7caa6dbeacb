import FerryTestSupport
import Foundation
import Testing

/// X.509 test credentials made with `openssl req -x509` at test time, laid out in the
/// directories qemu-nbd, nbdkit and libnbd read (GnuTLS's file names):
///
/// ```
/// server/   ca-cert.pem  server-cert.pem  server-key.pem    (CN=localhost, SAN localhost, 127.0.0.1)
/// client/   ca-cert.pem  client-cert.pem  client-key.pem    (signed by the same CA)
/// other/    ca-cert.pem  client-cert.pem  client-key.pem    (another CA: trusts nothing above)
/// anon/     ca-cert.pem                                     (the right CA, no client certificate)
/// misnamed/ ca-cert.pem  server-cert.pem  server-key.pem    (right CA, CN and SAN elsewhere.example)
/// ```
struct TLSCertificates {
    let server: String
    let client: String
    let other: String
    let anon: String
    let misnamed: String

    /// The extensions GnuTLS-based servers check (qemu refuses a server certificate whose key
    /// usage lacks keyEncipherment, or a CA without CA:TRUE).
    private static let config = """
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = ferry
        [ca]
        basicConstraints = critical,CA:TRUE
        keyUsage = critical,keyCertSign,cRLSign
        [server]
        basicConstraints = critical,CA:FALSE
        keyUsage = critical,digitalSignature,keyEncipherment
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost,IP:127.0.0.1
        [client]
        basicConstraints = critical,CA:FALSE
        keyUsage = critical,digitalSignature,keyEncipherment
        extendedKeyUsage = clientAuth
        [elsewhere]
        basicConstraints = critical,CA:FALSE
        keyUsage = critical,digitalSignature,keyEncipherment
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:elsewhere.example

        """

    init(in dir: TemporaryDirectory) throws {
        let cfg = dir.file("openssl.cnf")
        try Self.config.write(toFile: cfg, atomically: true, encoding: .utf8)
        func run(_ arguments: [String]) throws {
            try tool("openssl", ["req", "-x509", "-config", cfg, "-newkey", "rsa:2048", "-nodes", "-days", "2"] + arguments)
        }
        func make(_ name: String, files: [String]) throws -> String {
            let path = dir.file(name)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for file in files { try FileManager.default.copyItem(atPath: dir.file(file), toPath: path + "/" + (file as NSString).lastPathComponent) }
            return path
        }
        for ca in ["ca", "otherca"] {
            try run(["-extensions", "ca", "-keyout", dir.file("\(ca)-key.pem"), "-out", dir.file("\(ca).pem"), "-subj", "/CN=ferry test \(ca)"])
        }
        func leaf(_ name: String, _ kind: String, cn: String, ca: String) throws {
            try run([
                "-extensions", kind, "-keyout", dir.file("\(name)-key.pem"), "-out", dir.file("\(name)-cert.pem"), "-subj", "/CN=\(cn)",
                "-CA", dir.file("\(ca).pem"), "-CAkey", dir.file("\(ca)-key.pem"),
            ])
        }
        try leaf("server", "server", cn: "localhost", ca: "ca")
        try leaf("client", "client", cn: "ferry test client", ca: "ca")
        try FileManager.default.createDirectory(atPath: dir.file("o"), withIntermediateDirectories: true)
        try leaf("o/client", "client", cn: "ferry test intruder", ca: "otherca")
        try FileManager.default.createDirectory(atPath: dir.file("m"), withIntermediateDirectories: true)
        try leaf("m/server", "elsewhere", cn: "elsewhere.example", ca: "ca")
        try FileManager.default.copyItem(atPath: dir.file("ca.pem"), toPath: dir.file("ca-cert.pem"))
        try FileManager.default.copyItem(atPath: dir.file("otherca.pem"), toPath: dir.file("o/ca-cert.pem"))
        server = try make("server", files: ["ca-cert.pem", "server-cert.pem", "server-key.pem"])
        client = try make("client", files: ["ca-cert.pem", "client-cert.pem", "client-key.pem"])
        other = try make("other", files: ["o/ca-cert.pem", "o/client-cert.pem", "o/client-key.pem"])
        anon = try make("anon", files: ["ca-cert.pem"])
        misnamed = try make("misnamed", files: ["ca-cert.pem", "m/server-cert.pem", "m/server-key.pem"])
    }
}
