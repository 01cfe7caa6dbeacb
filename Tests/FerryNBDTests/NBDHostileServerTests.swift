import FerryDisk
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// ferry's client against a lying server (a Python script written here, speaking the handshake
/// honestly and then lying in the transmission phase): each lie must fail the call with an
/// `NBDError`, never hang, never write outside the caller's buffer.
@Suite(.serialized, .timeLimit(.minutes(2))) struct NBDHostileServerTests {
    /// The server: GO succeeds for a 1 MiB export with structured replies and base:allocation;
    /// the first request is answered by `LIE` (Python producing bytes from the request's cookie,
    /// offset and length).
    static func script(socket: String, lie: String) -> String {
        """
        import socket, struct, os
        s = socket.socket(socket.AF_UNIX); s.bind(\(String(reflecting: socket))); s.listen(1)
        c, _ = s.accept()
        def rd(n):
            b = b''
            while len(b) < n:
                x = c.recv(n - len(b))
                if not x: raise SystemExit
                b += x
            return b
        c.sendall(b'NBDMAGIC' + b'IHAVEOPT' + struct.pack('>H', 3)); rd(4)
        def rep(opt, typ, data=b''): c.sendall(struct.pack('>QIII', 0x3e889045565a9, opt, typ, len(data)) + data)
        while True:
            _, opt, n = struct.unpack('>QII', rd(16)); rd(n)
            if opt == 8: rep(8, 1)
            elif opt == 10: rep(10, 4, struct.pack('>I', 1) + b'base:allocation'); rep(10, 1)
            elif opt == 7: rep(7, 3, struct.pack('>HQH', 0, 1 << 20, 1 | 2)); rep(7, 1); break
            else: rep(opt, 0x80000001)
        _, flags, typ, cookie, off, length = struct.unpack('>IHHQQI', rd(28))
        def chunk(flags, typ, cookie, data): return struct.pack('>IHHQI', 0x668e33ef, flags, typ, cookie, len(data)) + data
        c.sendall(\(lie))
        c.recv(1 << 16)
        """
    }

    func expectRefused(_ lie: String, extents: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try TemporaryDirectory("ferry-nbd-hostile")
        try Self.script(socket: dir.file("h.sock"), lie: lie).write(toFile: dir.file("h.py"), atomically: true, encoding: .utf8)
        let daemon = try NBDDaemon("python3", [dir.file("h.py")], socket: dir.file("h.sock"))
        defer { daemon.stop() }
        let client = try NBDClient("nbd+unix:///?socket=" + dir.file("h.sock"))
        defer { try? client.close() }
        var buffer = [UInt8](repeating: 0, count: 4096)
        #expect(throws: NBDError.self, sourceLocation: sourceLocation) {
            if extents {
                _ = try client.extents(at: 0, length: 1 << 20)
            } else {
                try buffer.withUnsafeMutableBytes { try client.read(into: $0, at: 0) }
            }
        }
    }

    @Test func aReplyForAnUnknownCookie() throws {
        guard Tools.require("python3") else { return }
        try expectRefused("struct.pack('>IIQ', 0x67446698, 0, cookie + 1000)")
    }

    @Test func aDataChunkPastTheRequest() throws {
        guard Tools.require("python3") else { return }
        try expectRefused("chunk(1, 1, cookie, struct.pack('>Q', off + 4000) + b'x' * 200)")
    }

    @Test func aHugeChunk() throws {
        guard Tools.require("python3") else { return }
        try expectRefused("struct.pack('>IHHQI', 0x668e33ef, 1, 1, cookie, 0xFFFFFFF0)")
    }

    @Test func aReadLeftPartlyUncovered() throws {
        guard Tools.require("python3") else { return }
        try expectRefused("chunk(1, 2, cookie, struct.pack('>QI', off, 100))")
    }

    @Test func blockStatusWithoutAStatusChunk() throws {
        guard Tools.require("python3") else { return }
        try expectRefused("chunk(1, 0, cookie, b'')", extents: true)
    }

    @Test func blockStatusPastTheEnd() throws {
        guard Tools.require("python3") else { return }
        try expectRefused("chunk(1, 5, cookie, struct.pack('>III', 1, (1 << 20) + 4096, 0))", extents: true)
    }

    @Test func aConnectionClosedMidReply() throws {
        guard Tools.require("python3") else { return }
        try expectRefused("chunk(0, 1, cookie, struct.pack('>Q', off) + b'x' * 100)[:30]); c.close(); (b''")
    }
}
