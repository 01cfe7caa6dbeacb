import FerryDisk
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// multi-conn in the client (`NBDConnectionPool`): as many connections as asked when the server
/// sets NBD_FLAG_CAN_MULTI_CONN, counted on the server's side (`ss` for qemu-nbd, the `log`
/// filter for nbdkit, `connectedClients` for ferry's own server); one otherwise; the bytes equal
/// `qemu-img convert`'s; FLUSH on every connection; a server whose connections disagree refused.
@Suite(.serialized, .timeLimit(.minutes(5))) struct NBDMultiConnTests {
    /// Server-side sockets of a Unix socket path now established (`ss -x src PATH`).
    /// Polls a while (5 s at most), as the server may take a moment to drop closed ones.
    static func establishedSockets(_ path: String, expecting: Int) throws -> Int {
        var count = -1
        for _ in 0..<50 {
            count = try tool("ss", ["-x", "-H", "src", path]).split(separator: "\n").filter { $0.contains("ESTAB") }.count
            if count == expecting { break }
            usleep(100_000)
        }
        return count
    }

    /// nbdkit `log` filter lines: the distinct connections that connected, and per connection
    /// the commands of type `command` it received.
    static func logged(_ log: String, _ command: String) throws -> (connections: Set<String>, commands: [String: Int]) {
        var connections = Set<String>(), commands: [String: Int] = [:]
        for line in try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let i = fields.firstIndex(where: { $0.hasPrefix("connection=") }), i + 1 < fields.count else { continue }
            let id = String(fields[i])
            if fields[i + 1] == "Connect" { connections.insert(id) }
            if fields[i + 1] == command, line.hasSuffix(" ...") { commands[id, default: 0] += 1 }
        }
        return (connections, commands)
    }

    func oracle(_ uri: String, _ dir: TemporaryDirectory) throws -> [UInt8] {
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "raw", uri, dir.file("oracle.raw")])
        return Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("oracle.raw"))))
    }

    @Test func qemuNBDSharedOpensEveryConnection() throws {
        guard Tools.require("qemu-nbd", "qemu-img", "ss") else { return }
        let dir = try TemporaryDirectory("ferry-nbd-mc")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 24 << 20, seed: 1515)
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", dir.file("src.raw"), dir.file("src.qcow2")])
        let socket = dir.file("q.sock")
        let daemon = try NBDDaemon("qemu-nbd", ["-r", "-t", "-e", "8", "-f", "qcow2", "-k", socket, dir.file("src.qcow2")], socket: socket)
        defer { daemon.stop() }
        for wanted in [4, 3, 1] {
            let pool = try NBDConnectionPool(daemon.uri, connections: wanted)
            #expect(pool.negotiated.has(NBD.TransmissionFlag.canMultiConn))
            #expect(pool.connections.count == wanted)
            #expect(try Self.establishedSockets(socket, expecting: wanted) == wanted, "qemu-nbd's side of the connections")
            let ours = try NBDClientInteropTests.readAll(pool)
            #expect(ours == raw, "bytes through \(wanted) connections differ from the image's")
            let expected = try oracle(daemon.uri, dir)
            #expect(ours == expected, "bytes differ from qemu-img convert's")
            try pool.close()
        }
    }

    /// `ferry copy --verify` into a writable `qemu-nbd -e 8` export of a qcow2 (multi-conn: 4
    /// connections writing, FLUSH on each, block 0 last); `qemu-img compare` agrees.
    @Test func ferryCopyIntoASharedQemuNBDExport() throws {
        guard Tools.require("qemu-nbd", "qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-nbd-mc")
        _ = try writePatternDisk(dir.file("src.raw"), size: 24 << 20, seed: 1519)
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", dir.file("t.qcow2"), "\(24 << 20)"])
        let socket = dir.file("w.sock")
        let daemon = try NBDDaemon("qemu-nbd", ["-t", "-e", "8", "-f", "qcow2", "-k", socket, dir.file("t.qcow2")], socket: socket)
        let pool = try NBDConnectionPool(daemon.uri, writable: true)
        #expect(pool.connections.count == NBDConnectionPool.defaultConnections, "qemu-nbd -e 8 offers multi-conn writable too")
        try pool.close()
        let copy = try FerryExecutable.run(["copy", dir.file("src.raw"), daemon.uri, "--verify", "--progress", "none"])
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(copy.stdout.contains("verified"), "\(copy.stdout)")
        daemon.stop()
        let compare = try Tools.run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", dir.file("src.raw"), dir.file("t.qcow2")])
        #expect(compare.status == 0, "\(compare.stdout) \(compare.stderr)")
    }

    @Test func withoutMultiConnOneConnection() throws {
        guard Tools.require("qemu-nbd", "nbdkit", "qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-nbd-mc")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 8 << 20, seed: 1516)
        // qemu-nbd without -e serves one client and does not set the flag (a second connection
        // would wait in its backlog forever).
        let q = try NBDDaemon("qemu-nbd", ["-r", "-t", "-f", "raw", "-k", dir.file("q.sock"), dir.file("src.raw")], socket: dir.file("q.sock"))
        let single = try NBDConnectionPool(q.uri, connections: 4)
        #expect(!single.negotiated.has(NBD.TransmissionFlag.canMultiConn))
        #expect(single.connections.count == 1)
        #expect(try NBDClientInteropTests.readAll(single) == raw)
        try single.close()
        q.stop()
        // nbdkit with the multi-conn filter turning the flag off; its log counts connections.
        let log = dir.file("k.log")
        let k = try NBDDaemon(
            "nbdkit", ["-f", "-U", dir.file("k.sock"), "--filter=multi-conn", "--filter=log", "file", dir.file("src.raw"), "multi-conn-mode=disable", "logfile=" + log],
            socket: dir.file("k.sock"))
        defer { k.stop() }
        let pool = try NBDConnectionPool(k.uri, connections: 4)
        #expect(pool.connections.count == 1)
        #expect(try NBDClientInteropTests.readAll(pool) == raw)
        try pool.close()
        #expect(try Self.logged(log, "Read").connections.count == 1)
    }

    /// Writes through 4 connections into `nbdkit memory`: every connection carried writes and
    /// got a FLUSH; the export reads back (qemu-img convert) as written.
    @Test func nbdkitMemoryWritesOverEveryConnection() throws {
        guard Tools.require("nbdkit", "qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-nbd-mc")
        let size = 16 << 20
        let log = dir.file("k.log")
        let k = try NBDDaemon("nbdkit", ["-f", "-U", dir.file("k.sock"), "--filter=log", "memory", "\(size)", "logfile=" + log], socket: dir.file("k.sock"))
        defer { k.stop() }
        var random = SeededRandom(seed: 1517)
        let bytes = random.bytes(size)
        let pool = try NBDConnectionPool(k.uri, writable: true, connections: 4)
        #expect(pool.connections.count == 4)
        #expect(pool.capabilities.contains(.writable))
        let piece = 1 << 20
        let failure = LockedError()
        var source = bytes
        source.withUnsafeMutableBytes { raw in
            let base = SendablePointer(raw)
            DispatchQueue.concurrentPerform(iterations: size / piece) { i in
                let part = UnsafeRawBufferPointer(rebasing: base.raw[i * piece..<(i + 1) * piece])
                do { try pool.write(part, at: UInt64(i * piece)) } catch { failure.set(error) }
            }
        }
        #expect(failure.get() == nil, "\(String(describing: failure.get()))")
        try pool.writeZeros(at: 0, length: 65536, mayDiscard: true)
        try pool.flush()
        try pool.close()
        var expected = bytes
        for i in 0..<65536 { expected[i] = 0 }
        #expect(try oracle(k.uri, dir) == expected)
        let writes = try Self.logged(log, "Write"), flushes = try Self.logged(log, "Flush")
        // 4 of ours, then qemu-img's own.
        let ours = writes.commands.keys
        #expect(ours.count == 4, "writes went over \(ours.count) connections: \(writes.commands)")
        #expect(ours.allSatisfy { flushes.commands[$0] == 1 }, "a FLUSH per connection: \(flushes.commands)")
    }

    /// ferry's own server counts the connections; `FERRY_NBD_CONNECTIONS` sets how many
    /// `ferry copy` opens (nbdkit's log counts them), and the copy is the export's bytes.
    @Test func ferryServerAndTheEnvironmentVariable() throws {
        var random = SeededRandom(seed: 1518)
        let bytes = random.bytes(4 << 20)
        let device = MemoryDevice(name: "mem", bytes: bytes, writable: false)
        let server = try NBDServer(
            exports: [NBDServedExport(spec: NBDExportSpec(name: "m", size: device.size, writable: false), device: device)],
            listen: .tcp(host: "127.0.0.1", port: 0))
        defer { server.close() }
        let uri = try #require(server.uri())
        let pool = try NBDConnectionPool(uri)
        #expect(pool.connections.count == NBDConnectionPool.defaultConnections)
        #expect(server.connectedClients == NBDConnectionPool.defaultConnections)
        #expect(try NBDClientInteropTests.readAll(pool) == bytes)
        try pool.close()

        #expect(try NBDConnectionPool.connectionsFromEnvironment([:]) == 4)
        #expect(try NBDConnectionPool.connectionsFromEnvironment(["FERRY_NBD_CONNECTIONS": "7"]) == 7)
        for bad in ["0", "17", "many", ""] {
            #expect(throws: NBDError.self) { try NBDConnectionPool.connectionsFromEnvironment(["FERRY_NBD_CONNECTIONS": bad]) }
        }

        guard Tools.require("nbdkit") else { return }
        let dir = try TemporaryDirectory("ferry-nbd-mc")
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("src.raw")))
        for (setting, count) in [("3", 3), ("1", 1)] {
            let log = dir.file("k\(setting).log")
            let socket = dir.file("k\(setting).sock")
            let k = try NBDDaemon("nbdkit", ["-f", "-r", "-U", socket, "--filter=log", "file", dir.file("src.raw"), "logfile=" + log], socket: socket)
            let result = try FerryExecutable.shell(
                "FERRY_NBD_CONNECTIONS=\(setting) \"$FERRY\" copy '\(k.uri)' '\(dir.file("out\(setting).raw"))' --progress none")
            k.stop()
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try Self.logged(log, "Read").connections.count == count, "FERRY_NBD_CONNECTIONS=\(setting)")
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("out\(setting).raw")))) == bytes)
        }
        let refused = try FerryExecutable.shell("FERRY_NBD_CONNECTIONS=0 \"$FERRY\" checksum '\(uri)'")
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("FERRY_NBD_CONNECTIONS"), "\(refused.stderr)")
    }

    /// A fake server (Python) offering multi-conn whose later connections describe the export
    /// otherwise than the first (`size2`, `flags2`): refused, every connection closed.
    static func liar(socket: String, size2: Int, flags2: Int) -> String {
        """
        import socket, struct, threading
        s = socket.socket(socket.AF_UNIX); s.bind(\(String(reflecting: socket))); s.listen(8)
        def serve(c, size, flags):
            def rd(n):
                b = b''
                while len(b) < n:
                    x = c.recv(n - len(b))
                    if not x: raise EOFError
                    b += x
                return b
            def rep(opt, typ, data=b''): c.sendall(struct.pack('>QIII', 0x3e889045565a9, opt, typ, len(data)) + data)
            try:
                c.sendall(b'NBDMAGIC' + b'IHAVEOPT' + struct.pack('>H', 3)); rd(4)
                while True:
                    _, opt, n = struct.unpack('>QII', rd(16)); rd(n)
                    if opt == 8: rep(8, 1)
                    elif opt == 10: rep(10, 4, struct.pack('>I', 1) + b'base:allocation'); rep(10, 1)
                    elif opt == 7: rep(7, 3, struct.pack('>HQH', 0, size, flags)); rep(7, 1); break
                    else: rep(opt, 0x80000001)
                while True: rd(28)
            except EOFError: pass
            c.close()
        first = True
        while True:
            c, _ = s.accept()
            size, flags = (1 << 20, 1 | 2 | 256) if first else (\(size2), \(flags2))
            first = False
            threading.Thread(target=serve, args=(c, size, flags), daemon=True).start()
        """
    }

    @Test func connectionsThatDisagreeAreRefused() throws {
        guard Tools.require("python3") else { return }
        for (size2, flags2) in [(2 << 20, 1 | 2 | 256), (1 << 20, 1 | 256)] {
            let dir = try TemporaryDirectory("ferry-nbd-mc")
            try Self.liar(socket: dir.file("l.sock"), size2: size2, flags2: flags2).write(toFile: dir.file("l.py"), atomically: true, encoding: .utf8)
            let daemon = try NBDDaemon("python3", [dir.file("l.py")], socket: dir.file("l.sock"))
            defer { daemon.stop() }
            do {
                let pool = try NBDConnectionPool(daemon.uri, connections: 3)
                Issue.record("a server whose connections disagree was accepted with \(pool.connections.count) connections")
            } catch let error as NBDError {
                #expect(error.code == .protocolViolation)
                #expect(error.description.contains("connection 2 of 3"), "\(error)")
            }
            // One connection has nothing to disagree with: it opens (this server's later
            // connections all get the second description).
            let one = try NBDConnectionPool(daemon.uri, connections: 1)
            #expect(one.connections.count == 1 && one.size == UInt64(size2))
            try one.close()
        }
    }
}
