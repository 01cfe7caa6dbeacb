import FerryDisk
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// NBD over TLS (`nbds://`, `ferry serve --tls-certificates`) against the real peers: qemu-nbd
/// (`tls-creds-x509`, which verifies clients by default) and nbdkit (`--tls=require`) serving,
/// nbdinfo and nbdcopy (libnbd) reading ferry's server, and ferry with itself. The certificates
/// are made at test time (`TLSCertificates`, openssl). Oracles: the source's bytes, nbdcopy's.
@Suite(.serialized, .timeLimit(.minutes(5))) struct NBDTLSTests {
    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// The `NBDError` opening `uri` throws (the test fails when it opens).
    static func refusal(_ uri: String, sourceLocation: SourceLocation = #_sourceLocation) -> NBDError? {
        do {
            let client = try NBDClient(uri)
            try? client.close()
            Issue.record("\(uri) opened", sourceLocation: sourceLocation)
            return nil
        } catch let error as NBDError {
            return error
        } catch {
            Issue.record("\(uri): \(error) is no NBDError", sourceLocation: sourceLocation)
            return nil
        }
    }

    static func served(_ bytes: [UInt8], tls: NBDServerTLS?, at socket: String) throws -> NBDServer {
        let device = MemoryDevice(name: "mem", bytes: bytes, writable: false)
        let spec = NBDExportSpec(name: "disk", size: device.size, writable: false)
        return try NBDServer(exports: [NBDServedExport(spec: spec, device: device)], listen: .unix(path: socket), tls: tls)
    }

    @Test func ferryReadsQemuNBDOverTLS() throws {
        guard Tools.require("qemu-nbd", "openssl") else { return }
        let dir = try TemporaryDirectory("ferry-tls")
        let certs = try TLSCertificates(in: dir)
        let raw = try writePatternDisk(dir.file("src.raw"), size: 12 << 20, seed: 77)
        let socket = dir.file("q.sock")
        // verify-peer is qemu's default: ferry must present client-cert.pem.
        let daemon = try NBDDaemon(
            "qemu-nbd",
            ["--object", "tls-creds-x509,id=tls0,dir=\(certs.server),endpoint=server", "--tls-creds", "tls0", "-r", "-t", "-e", "4", "-f", "raw", "-k", socket, dir.file("src.raw")],
            socket: socket)
        defer { daemon.stop() }
        let uri = "nbds+unix:///?socket=\(socket)&tls-certificates=\(certs.client)"
        let client = try NBDClient(uri)
        #expect(client.negotiated.structuredReplies)
        #expect(client.negotiated.baseAllocation != nil)
        #expect(try NBDClientInteropTests.readAll(client) == raw)
        #expect(try client.extents(at: 0, length: client.size).contains { $0.kind == .hole })
        try client.close()
        // Plaintext against a TLS-only server: told to use nbds://.
        let plain = Self.refusal("nbd+unix:///?socket=\(socket)")
        #expect(plain?.code == .tls)
        #expect(plain?.description.contains("use nbds://") == true, "\(String(describing: plain))")
        // A CA that did not sign qemu's certificate: the handshake fails, nothing is read.
        let wrong = Self.refusal("nbds+unix:///?socket=\(socket)&tls-certificates=\(certs.other)")
        #expect(wrong?.code == .tls, "\(String(describing: wrong))")
        // The right CA but no client certificate: qemu-nbd hangs up during the handshake.
        let anonymous = Self.refusal("nbds+unix:///?socket=\(socket)&tls-certificates=\(certs.anon)")
        #expect(anonymous?.code == .tls, "\(String(describing: anonymous))")
    }

    @Test func ferryReadsNbdkitOverTLSOnTCP() throws {
        guard Tools.require("nbdkit", "nbdcopy", "openssl") else { return }
        let dir = try TemporaryDirectory("ferry-tls")
        let certs = try TLSCertificates(in: dir)
        let port = TestPorts.unassigned()
        // nbdkit writes its pid file once it listens.
        let daemon = try NBDDaemon(
            "nbdkit",
            [
                "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", "\(port)", "-P", dir.file("pid"), "--tls=require",
                "--tls-certificates=\(certs.server)", "data", "( 0x55 0xAA 1 2 3 )*4000 @3145728 \"ferry over TLS\"", "size=6M",
            ],
            socket: dir.file("pid"))
        defer { daemon.stop() }
        // Its host name (and the certificate's name) is localhost; 127.0.0.1 is in its SAN too.
        for host in ["localhost", "127.0.0.1"] {
            let uri = "nbds://\(host):\(port)/?tls-certificates=\(certs.client)"
            try tool("nbdcopy", [uri, dir.file("oracle.raw")])
            let client = try NBDClient(uri)
            defer { try? client.close() }
            let ours = try NBDClientInteropTests.readAll(client)
            #expect(ours.count == 6 << 20)
            #expect(ours == (try Self.bytes(dir.file("oracle.raw"))), "ferry's bytes differ from nbdcopy's over \(host)")
            #expect(ours[3145728..<3145742].elementsEqual("ferry over TLS".utf8))
        }
        #expect(Self.refusal("nbd://127.0.0.1:\(port)/")?.description.contains("use nbds://") == true)
    }

    @Test func libnbdReadsFerrysTLSServer() throws {
        guard Tools.require("nbdinfo", "nbdcopy", "openssl") else { return }
        let dir = try TemporaryDirectory("ferry-tls")
        let certs = try TLSCertificates(in: dir)
        let raw = try writePatternDisk(dir.file("src.raw"), size: 8 << 20, seed: 5)
        let disk = try FileDevice.openForReading(dir.file("src.raw"))
        defer { try? disk.close() }
        let spec = NBDExportSpec(name: "disk", size: disk.size, writable: false)
        let server = try NBDServer(
            exports: [NBDServedExport(spec: spec, device: disk)], listen: .unix(path: dir.file("s.sock")), tls: NBDServerTLS(certificates: certs.server))
        defer { server.close() }
        let uri = try #require(server.uri())
        #expect(uri.hasPrefix("nbds+unix:///disk?socket=") && uri.contains("tls-certificates=\(certs.server)"), "\(uri)")
        #expect(try tool("nbdinfo", ["--size", uri]).trimmingCharacters(in: .whitespacesAndNewlines) == "\(8 << 20)")
        try tool("nbdcopy", [uri, dir.file("copy.raw")])
        #expect(try Self.bytes(dir.file("copy.raw")) == raw)
        #expect(try nbdinfoMap(uri).contains { $0.2 == 3 }, "no holes over TLS")
        // libnbd in plaintext hears NBD_REP_ERR_TLS_REQD.
        let plain = try Tools.run("nbdinfo", ["--size", "nbd+unix:///disk?socket=\(dir.file("s.sock"))"])
        #expect(plain.status != 0 && plain.stderr.contains("TLS"), "\(plain.stderr)")
        // Over TCP libnbd checks our certificate: the right CA reads, another fails. (libnbd
        // 1.14 checks nothing over a Unix socket, qemu-nbd's certificate neither.)
        let tcp = try NBDServer(
            exports: [NBDServedExport(spec: spec, device: disk)], listen: .tcp(host: "127.0.0.1", port: 0), tls: NBDServerTLS(certificates: certs.server))
        defer { tcp.close() }
        guard case .tcp(_, let port) = tcp.listening else { return }
        #expect(try tool("nbdinfo", ["--size", "nbds://localhost:\(port)/disk?tls-certificates=\(certs.client)"]).hasPrefix("\(8 << 20)"))
        let wrong = try Tools.run("nbdinfo", ["--size", "nbds://localhost:\(port)/disk?tls-certificates=\(certs.other)"])
        #expect(wrong.status != 0 && wrong.stderr.contains("certificate"), "\(wrong.stdout)\(wrong.stderr)")
    }

    @Test func serverNamesAreChecked() throws {
        guard Tools.require("openssl") else { return }
        let dir = try TemporaryDirectory("ferry-tls")
        let certs = try TLSCertificates(in: dir)
        let device = MemoryDevice(name: "mem", bytes: [UInt8](repeating: 1, count: 65536), writable: false)
        let spec = NBDExportSpec(name: "", size: device.size, writable: false)
        let server = try NBDServer(
            exports: [NBDServedExport(spec: spec, device: device)], listen: .tcp(host: "127.0.0.1", port: 0), tls: NBDServerTLS(certificates: certs.misnamed))
        defer { server.close() }
        guard case .tcp(_, let port) = server.listening else { return }
        // Signed by the right CA, but for elsewhere.example: neither localhost nor 127.0.0.1.
        for host in ["localhost", "127.0.0.1"] {
            let refused = Self.refusal("nbds://\(host):\(port)/?tls-certificates=\(certs.client)")
            #expect(refused?.code == .tls, "\(String(describing: refused))")
        }
        let named = try NBDClient("nbds://127.0.0.1:\(port)/?tls-certificates=\(certs.client)&tls-hostname=elsewhere.example")
        #expect(try named.readBytes(at: 0, count: 4) == [1, 1, 1, 1])
        try named.close()
        // tls-verify-peer=0 takes any certificate (named here so that nobody thinks it checks).
        let unchecked = try NBDClient("nbds://localhost:\(port)/?tls-certificates=\(certs.other)&tls-verify-peer=0")
        try unchecked.close()
    }

    @Test func ferryWithItselfVerifyingClients() throws {
        guard Tools.require("openssl") else { return }
        let dir = try TemporaryDirectory("ferry-tls")
        let certs = try TLSCertificates(in: dir)
        var random = SeededRandom(seed: 15)
        let bytes = random.bytes(3 << 20)
        let socket = dir.file("f.sock")
        let server = try Self.served(bytes, tls: NBDServerTLS(certificates: certs.server, verifyPeer: true), at: socket)
        defer { server.close() }
        let client = try NBDClient("nbds+unix:///disk?socket=\(socket)&tls-certificates=\(certs.client)")
        #expect(try NBDClientInteropTests.readAll(client) == bytes)
        #expect(client.negotiated.baseAllocation != nil)
        try client.close()
        // No client certificate, or one from another CA: refused; plaintext: told to use nbds://.
        #expect(Self.refusal("nbds+unix:///disk?socket=\(socket)&tls-certificates=\(certs.anon)")?.code == .tls)
        #expect(Self.refusal("nbds+unix:///disk?socket=\(socket)&tls-certificates=\(certs.other)")?.code == .tls)
        let plain = Self.refusal("nbd+unix:///disk?socket=\(socket)")
        #expect(plain?.code == .tls && plain?.description.contains("use nbds://") == true, "\(String(describing: plain))")
        // A missing certificate directory fails before any connection.
        #expect(Self.refusal("nbds+unix:///disk?socket=\(socket)&tls-certificates=\(dir.file("absent"))")?.code == .tls)
        #expect(throws: NBDError.self) { try Self.served(bytes, tls: NBDServerTLS(certificates: certs.client), at: dir.file("g.sock")) }
    }

    @Test func tlsAskedOfAServerWithoutIt() throws {
        let dir = try TemporaryDirectory("ferry-tls")
        let bytes = [UInt8](repeating: 7, count: 1 << 20)
        let server = try Self.served(bytes, tls: nil, at: dir.file("p.sock"))
        defer { server.close() }
        // ferry's plaintext server answers STARTTLS with ERR_POLICY: refused, no fallback.
        let refused = Self.refusal("nbds+unix:///disk?socket=\(dir.file("p.sock"))")
        #expect(refused?.code == .tls)
        #expect(refused?.description.contains("NBD_REP_ERR_POLICY") == true, "\(String(describing: refused))")
        #expect(refused?.description.contains("never falls back to plaintext") == true)
        guard Tools.require("nbdkit") else { return }
        let daemon = try NBDDaemon(
            "nbdkit", ["-f", "--exit-with-parent", "-P", dir.file("k.pid"), "-U", dir.file("k.sock"), "memory", "1M"], socket: dir.file("k.pid"))
        defer { daemon.stop() }
        #expect(Self.refusal("nbds+unix:///?socket=\(dir.file("k.sock"))")?.code == .tls)
    }

    @Test func serveRunGivesATLSURI() throws {
        guard Tools.require("nbdinfo", "nbdcopy", "openssl") else { return }
        let dir = try TemporaryDirectory("ferry-tls")
        let certs = try TLSCertificates(in: dir)
        let raw = try writePatternDisk(dir.file("src.raw"), size: 4 << 20, seed: 3)
        let run = try FerryExecutable.run([
            "serve", dir.file("src.raw"), "--tls-certificates", certs.server,
            "--run", "nbdinfo --size \"$uri\" && nbdcopy \"$uri\" '\(dir.file("out.raw"))' && echo \"$uri\"",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.hasPrefix("\(4 << 20)\nnbds+unix:///src.raw?socket="), "\(run.stdout)")
        #expect(try Self.bytes(dir.file("out.raw")) == raw)
        // A directory without the server's key: the exit code of an authentication failure.
        let missing = try FerryExecutable.run(["serve", dir.file("src.raw"), "--tls-certificates", certs.client, "--run", "true"])
        #expect(missing.status == 77, "\(missing.stderr)")
        #expect(missing.stderr.contains("server-cert.pem"))
        #expect(try FerryExecutable.run(["serve", dir.file("src.raw"), "--tls-verify-peer", "--run", "true"]).status == 64)
    }

    /// TLS-PSK (TLS 1.2 PSK suites: BoringSSL has no TLS 1.3 PSK) with GnuTLS's peers and itself.
    @Test func pskWithQemuNbdkitLibnbdAndItself() throws {
        guard Tools.require("qemu-nbd", "nbdkit", "nbdcopy", "nbdinfo") else { return }
        let dir = try TemporaryDirectory("ferry-tls")
        var random = SeededRandom(seed: 99)
        let hex = { (n: Int) in random.bytes(n).map { String(format: "%02x", $0) }.joined() }
        try FileManager.default.createDirectory(atPath: dir.file("psk"), withIntermediateDirectories: true)
        try "alice:\(hex(32))\n".write(toFile: dir.file("psk/keys.psk"), atomically: true, encoding: .utf8)  // qemu's name in its dir
        try "alice:\(hex(32))\n".write(toFile: dir.file("bad.psk"), atomically: true, encoding: .utf8)
        let keys = dir.file("psk/keys.psk")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 4 << 20, seed: 12)
        let qemu = try NBDDaemon(
            "qemu-nbd", ["--object", "tls-creds-psk,id=tls0,dir=\(dir.file("psk")),endpoint=server", "--tls-creds", "tls0", "-r", "-t", "-f", "raw", "-k", dir.file("q.sock"), dir.file("src.raw")],
            socket: dir.file("q.sock"))
        defer { qemu.stop() }
        let fromQemu = try NBDClient("nbds+unix://alice@/?socket=\(dir.file("q.sock"))&tls-psk-file=\(keys)")
        #expect(try NBDClientInteropTests.readAll(fromQemu) == raw)
        try fromQemu.close()
        #expect(Self.refusal("nbds+unix://alice@/?socket=\(dir.file("q.sock"))&tls-psk-file=\(dir.file("bad.psk"))")?.code == .tls)
        #expect(Self.refusal("nbds+unix://bob@/?socket=\(dir.file("q.sock"))&tls-psk-file=\(keys)")?.description.contains("no key for user \"bob\"") == true)
        let nbdkit = try NBDDaemon(
            "nbdkit", ["-f", "--exit-with-parent", "-P", dir.file("k.pid"), "--tls=require", "--tls-psk=\(keys)", "-U", dir.file("k.sock"), "file", dir.file("src.raw")],
            socket: dir.file("k.pid"))  // the pid file comes once it listens
        defer { nbdkit.stop() }
        let fromNbdkit = try NBDClient("nbds+unix://alice@/?socket=\(dir.file("k.sock"))&tls-psk-file=\(keys)")
        #expect(try NBDClientInteropTests.readAll(fromNbdkit) == raw)
        try fromNbdkit.close()
        // ferry's PSK server: libnbd and ferry read it, $uri names the file and its first user.
        let device = MemoryDevice(name: "mem", bytes: raw, writable: false)
        let server = try NBDServer(
            exports: [NBDServedExport(spec: NBDExportSpec(name: "d", size: device.size, writable: false), device: device)],
            listen: .unix(path: dir.file("f.sock")), tls: NBDServerTLS(pskFile: keys))
        defer { server.close() }
        let uri = try #require(server.uri())
        #expect(uri == "nbds+unix://alice@/d?socket=\(dir.file("f.sock"))&tls-psk-file=\(keys)")
        try tool("nbdcopy", [uri, dir.file("copy.raw")])
        #expect(try Self.bytes(dir.file("copy.raw")) == raw)
        let ours = try NBDClient(uri)
        #expect(try ours.readBytes(at: 0, count: 4096) == Array(raw[0..<4096]))
        try ours.close()
        #expect(try Tools.run("nbdinfo", ["--size", "nbds+unix://alice@/d?socket=\(dir.file("f.sock"))&tls-psk-file=\(dir.file("bad.psk"))"]).status != 0)
        #expect(Self.refusal("nbds+unix://alice@/d?socket=\(dir.file("f.sock"))&tls-psk-file=\(dir.file("bad.psk"))")?.code == .tls)
    }
}
