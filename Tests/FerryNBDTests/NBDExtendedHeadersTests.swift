import FerryDisk
import FerryNBD
import FerryTestSupport
import Foundation
import NIOCore
import Testing

/// NBD extended headers (`NBD_OPT_EXTENDED_HEADERS`): the codec's new request and reply forms,
/// a hostile peer's lengths and magics refused, and ferry's server driven by a client speaking
/// them (a Python script: none of the installed NBD tools, libnbd 1.14, qemu-nbd 7.2 and nbdkit
/// 1.32, speaks extended headers yet).
@Suite(.serialized, .timeLimit(.minutes(2))) struct NBDExtendedHeadersTests {
    @Test func extendedRequestsRoundTripWithSixtyFourBitLengths() throws {
        let requests = [
            NBDRequest(flags: 0, type: NBD.Command.writeZeroes.rawValue, cookie: 3, offset: 1 << 40, length: 5 << 32),
            NBDRequest(flags: NBD.CommandFlag.payloadLength, type: NBD.Command.write.rawValue, cookie: 4, offset: 512, length: 4096),
            NBDRequest(flags: 0, type: NBD.Command.blockStatus.rawValue, cookie: 5, offset: 0, length: UInt64.max),
        ]
        for request in requests {
            var b = ByteBuffer()
            request.write(to: &b, extended: true)
            #expect(b.readableBytes == NBDRequest.extendedHeaderSize)
            #expect(try NBDRequest.decode(from: &b, extended: true) == request)
            #expect(b.readableBytes == 0)
        }
        // A WRITE gets PAYLOAD_LEN when written extended; its payload length is the length.
        var b = ByteBuffer()
        NBDRequest(.write, cookie: 1, offset: 0, length: 512).write(to: &b, extended: true)
        let write = try #require(try NBDRequest.decode(from: &b, extended: true))
        #expect(write.flags & NBD.CommandFlag.payloadLength != 0)
        #expect(write.payloadLength(extended: true) == 512)
        #expect(NBDRequest(.read, cookie: 1, length: 512).payloadLength(extended: true) == 0)
        // An incomplete header consumes nothing.
        var part = ByteBuffer()
        NBDRequest(.read, cookie: 1, length: 512).write(to: &part, extended: true)
        part.moveWriterIndex(to: 31)
        #expect(try NBDRequest.decode(from: &part, extended: true) == nil)
        #expect(part.readableBytes == 31)
    }

    @Test func theWrongMagicForTheModeIsRefused() {
        var compact = ByteBuffer()
        NBDRequest(.read, cookie: 1, length: 512).write(to: &compact)
        // 28 bytes, fewer than an extended header: refused now, not waited on.
        #expect(throws: NBDError.self) { _ = try NBDRequest.decode(from: &compact, extended: true) }
        var extended = ByteBuffer()
        NBDRequest(.read, cookie: 1, length: 512).write(to: &extended, extended: true)
        #expect(throws: NBDError.self) { _ = try NBDRequest.decode(from: &extended, extended: false) }
        // An extended WRITE must say PAYLOAD_LEN, else its payload cannot be told from the next request.
        var bare = ByteBuffer()
        NBDRequest(flags: 0, type: NBD.Command.write.rawValue, cookie: 1, offset: 0, length: 512).write(to: &bare, extended: false)
        var header = ByteBuffer()
        header.writeInteger(NBD.extendedRequestMagic, endianness: .big)
        header.writeInteger(UInt16(0), endianness: .big)
        header.writeInteger(NBD.Command.write.rawValue, endianness: .big)
        header.writeInteger(UInt64(1), endianness: .big)
        header.writeInteger(UInt64(0), endianness: .big)
        header.writeInteger(UInt64(512), endianness: .big)
        #expect(throws: NBDError.self) { _ = try NBDRequest.decode(from: &header, extended: true) }
    }

    @Test func theServerChecksExtendedRequests() {
        let spec = NBDExportSpec(name: "", size: 6 << 30, writable: true)
        let agreement = NBDSessionAgreement(export: 0, structuredReplies: false, baseAllocation: true, extendedHeaders: true)
        #expect(agreement.structuredReplies, "extended headers imply structured replies")
        // 64-bit effect lengths are fine within the export, refused past it; a READ over the payload limit is EOVERFLOW.
        #expect(NBDServerWork.check(NBDRequest(flags: 0, type: 6, cookie: 1, offset: 0, length: 5 << 30), export: spec, agreement: agreement) == nil)
        #expect(NBDServerWork.check(NBDRequest(flags: 0, type: 7, cookie: 1, offset: 0, length: 6 << 30), export: spec, agreement: agreement) == nil)
        #expect(NBDServerWork.check(NBDRequest(flags: 0, type: 6, cookie: 1, offset: 1, length: 6 << 30), export: spec, agreement: agreement) == NBD.Errno.einval)
        #expect(NBDServerWork.check(NBDRequest(flags: 0, type: 0, cookie: 1, offset: 0, length: 1 << 32), export: spec, agreement: agreement) == NBD.Errno.eoverflow)
        #expect(NBDServerWork.check(NBDRequest(flags: 0, type: 0, cookie: 1, offset: UInt64.max, length: 2), export: spec, agreement: agreement) == NBD.Errno.einval)
        // A payload on a command that takes none (consumed by the server first) is EINVAL.
        let flush = NBDRequest(flags: NBD.CommandFlag.payloadLength, type: NBD.Command.flush.rawValue, cookie: 1, offset: 0, length: 16)
        #expect(NBDServerWork.check(flush, export: spec, agreement: agreement) == NBD.Errno.einval)
    }

    /// A client speaking extended headers to ferry's server over a 6 GiB sparse file: WRITE
    /// with PAYLOAD_LEN, READ, BLOCK_STATUS over the whole export (a > 4 GiB descriptor in
    /// BLOCK_STATUS_EXT), WRITE_ZEROES of 5 GiB, every reply extended; then a compact request,
    /// which the server answers by hanging up.
    @Test func ferrysServerSpeaksExtendedHeaders() throws {
        guard Tools.require("python3") else { return }
        let dir = try TemporaryDirectory("ferry-nbd-ext")
        let size: UInt64 = 6 << 30
        _ = FileManager.default.createFile(atPath: dir.file("big.raw"), contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("big.raw")))
        try handle.truncate(atOffset: size)
        try handle.close()
        let device = try FileDevice.openForWriting(dir.file("big.raw"))
        defer { try? device.close() }
        let spec = NBDExportSpec(name: "", size: device.size, writable: true)
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: device)], listen: .unix(path: dir.file("e.sock")))
        defer { server.close() }
        let script = """
            import socket, struct, sys
            c = socket.socket(socket.AF_UNIX); c.settimeout(30); c.connect(\(String(reflecting: dir.file("e.sock"))))
            def rd(n):
                b = b''
                while len(b) < n:
                    x = c.recv(n - len(b))
                    if not x: raise EOFError('closed after %d of %d bytes' % (len(b), n))
                    b += x
                return b
            rd(18); c.sendall(struct.pack('>I', 3))
            def opt(o, data=b''):
                c.sendall(b'IHAVEOPT' + struct.pack('>II', o, len(data)) + data)
                out = []
                while True:
                    _, ro, typ, n = struct.unpack('>QIII', rd(20)); d = rd(n); out.append((typ, d))
                    if typ == 1 or typ & 0x80000000: return out
            print('ext', opt(11)[-1][0])
            q = b'base:allocation'
            print('meta', [t for t, _ in opt(10, struct.pack('>I', 0) + struct.pack('>II', 1, len(q)) + q)])
            print('structured-after', hex(opt(8)[-1][0]))
            print('go', opt(7, struct.pack('>IH', 0, 0))[-1][0])
            def req(flags, typ, cookie, off, length, payload=b''):
                c.sendall(struct.pack('>IHHQQQ', 0x21e41c71, flags, typ, cookie, off, length) + payload)
            def reply():
                magic, flags, typ, cookie, off, n = struct.unpack('>IHHQQQ', rd(32))
                return magic, flags, typ, cookie, off, rd(n)
            G = 1 << 30
            req(1 << 5, 1, 1, 5 * G, 4096, b'\\xab' * 4096)
            m, f, t, k, o, d = reply(); print('write', hex(m), f, t, k, o == 5 * G, len(d))
            req(0, 0, 2, 5 * G - 4096, 8192)
            chunks = []
            while True:
                m, f, t, k, o, d = reply(); chunks.append((hex(m), t, o == 5 * G - 4096))
                if t == 1: data = d[8:]
                if f & 1: break
            print('read', chunks, data == b'\\xab' * len(data), len(data))
            req(0, 7, 3, 0, 6 * G)
            m, f, t, k, o, d = reply()
            ctx, count = struct.unpack('>II', d[:8])
            descs = [struct.unpack('>QQ', d[8 + 16 * i:24 + 16 * i]) for i in range(count)]
            print('status', hex(m), t, count, len(d) == 8 + 16 * count, descs[0][0] >= 4 * G, descs[0][1])
            req(0, 6, 4, 0, 5 * G + 8192)
            m, f, t, k, o, d = reply(); print('zeroes', hex(m), f, t, len(d))
            req(0, 0, 5, 5 * G, 4096)
            m, f, t, k, o, d = reply(); print('reread', t)
            req(1 << 5, 3, 6, 0, 16, b'\\0' * 16)
            m, f, t, k, o, d = reply(); print('payload-on-flush', t, struct.unpack('>I', d[:4])[0])
            c.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, 7, 0, 512))
            try:
                print('compact', rd(1))
            except EOFError:
                print('compact closed')
            """
        try script.write(toFile: dir.file("c.py"), atomically: true, encoding: .utf8)
        let run = try Tools.run("python3", [dir.file("c.py")], limit: 60)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("ext 1"), "EXTENDED_HEADERS is acknowledged")
        #expect(lines.contains("meta [4, 1]"))
        #expect(lines.contains("go 1"))
        #expect(lines.contains("structured-after 0x8000000a"), "STRUCTURED_REPLY after it is refused with EXT_HEADER_REQD")
        #expect(lines.contains("write 0x6e8a278c 1 0 1 True 0"), "a WRITE is answered by an extended NONE chunk")
        #expect(lines.contains("read [('0x6e8a278c', 2, True), ('0x6e8a278c', 1, True)] True 4096"), "\(lines)")
        #expect(lines.contains("status 0x6e8a278c 6 3 True True 3"), "block status is BLOCK_STATUS_EXT with a > 4 GiB hole: \(lines)")
        #expect(lines.contains("zeroes 0x6e8a278c 1 0 0"))
        #expect(lines.contains("reread 2"), "the 5 GiB WRITE_ZEROES made the written block a hole again")
        #expect(lines.contains("payload-on-flush 32769 22"), "a payload on FLUSH is consumed and refused with EINVAL")
        #expect(lines.contains("compact closed"), "a compact request after extended headers is a violation: \(lines)")
    }

    /// ferry's client and server: extended headers agreed on both sides; extents of a 6 GiB sparse
    /// file (BLOCK_STATUS_EXT, > 4 GiB runs), a 5 GiB WRITE_ZEROES, bytes read back.
    @Test func ferrysClientAndServerAgreeOnExtendedHeaders() throws {
        let dir = try TemporaryDirectory("ferry-nbd-ext")
        let size: UInt64 = 6 << 30
        _ = FileManager.default.createFile(atPath: dir.file("big.raw"), contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("big.raw")))
        try handle.truncate(atOffset: size)
        try handle.close()
        let device = try FileDevice.openForWriting(dir.file("big.raw"))
        defer { try? device.close() }
        let spec = NBDExportSpec(name: "", size: device.size, writable: true)
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: device)], listen: .unix(path: dir.file("f.sock")))
        defer { server.close() }
        let client = try NBDClient(try #require(server.uri()), writable: true)
        defer { try? client.close() }
        #expect(client.negotiated.extendedHeaders)
        #expect(client.negotiated.structuredReplies)
        let block = [UInt8](repeating: 0x5A, count: 65536)
        try block.withUnsafeBytes { try client.write($0, at: 5 << 30) }
        let map = try client.extents(at: 0, length: size)
        #expect(map.first?.kind == .hole && (map.first?.length ?? 0) >= 4 << 30, "\(map)")
        #expect(map.contains { $0.kind == .data && $0.offset <= 5 << 30 && $0.end >= (5 << 30) + 65536 }, "\(map)")
        var back = [UInt8](repeating: 0, count: block.count)
        try back.withUnsafeMutableBytes { try client.read(into: $0, at: 5 << 30) }
        #expect(back == block)
        try client.writeZeros(at: 0, length: (5 << 30) + 65536, mayDiscard: true)
        try back.withUnsafeMutableBytes { try client.read(into: $0, at: 5 << 30) }
        #expect(back.allSatisfy { $0 == 0 })
    }

    /// A hostile server's extended replies: each refused with an `NBDError`.
    @Test func hostileExtendedRepliesAreRefused() throws {
        let pending: [UInt64: NBDPending] = [
            7: NBDPending(command: .read, offset: 4096, length: 8192),
            8: NBDPending(command: .blockStatus, offset: 0, length: 6 << 30),
        ]
        func header(_ b: inout ByteBuffer, magic: UInt32 = NBD.extendedReplyMagic, type: UInt16, cookie: UInt64, offset: UInt64, length: UInt64) {
            b.writeInteger(magic, endianness: .big)
            b.writeInteger(NBD.Chunk.flagDone, endianness: .big)
            b.writeInteger(type, endianness: .big)
            b.writeInteger(cookie, endianness: .big)
            b.writeInteger(offset, endianness: .big)
            b.writeInteger(length, endianness: .big)
        }
        func refused(_ why: Comment, _ write: (inout ByteBuffer) -> Void, decoder: NBDReplyDecoder? = nil) {
            var b = ByteBuffer()
            write(&b)
            #expect(throws: NBDError.self, why) { _ = try (decoder ?? Self.extendedDecoder).next(from: &b, pending: { pending[$0] }) }
        }
        // A good BLOCK_STATUS_EXT with a 5 GiB descriptor decodes.
        var good = ByteBuffer()
        header(&good, type: NBD.Chunk.blockStatusExtended, cookie: 8, offset: 0, length: 8 + 16)
        good.writeInteger(UInt32(1), endianness: .big)
        good.writeInteger(UInt32(1), endianness: .big)
        good.writeInteger(UInt64(5 << 30), endianness: .big)
        good.writeInteger(UInt64(3), endianness: .big)
        let reply = try Self.extendedDecoder.next(from: &good, pending: { pending[$0] })
        #expect(reply == .chunk(cookie: 8, done: true, payload: .blockStatus(context: 1, descriptors: [.init(length: 5 << 30, flags: 3)])))
        // A server's own writer round-trips through the decoder.
        var written = ByteBuffer()
        NBDReply.chunk(cookie: 7, done: true, payload: .hole(offset: 4096, length: 8192)).writeExtended(offset: 4096, to: &written)
        #expect(try Self.extendedDecoder.next(from: &written, pending: { pending[$0] }) == .chunk(cookie: 7, done: true, payload: .hole(offset: 4096, length: 8192)))
        refused("a structured reply after extended headers") { b in
            NBDReply.chunk(cookie: 7, done: true, payload: .none).write(to: &b)
        }
        refused("a simple reply after extended headers") { b in NBDReply.simple(cookie: 7, error: 0, data: nil).write(to: &b) }
        refused("an extended reply without extended headers", { b in
            NBDReply.chunk(cookie: 7, done: true, payload: .none).writeExtended(offset: 4096, to: &b)
        }, decoder: NBDReplyDecoder(exportSize: 6 << 30))
        refused("an offset that is not the request's") { b in header(&b, type: NBD.Chunk.none, cookie: 7, offset: 0, length: 0) }
        refused("a 64-bit length, refused from the header") { b in header(&b, type: NBD.Chunk.offsetData, cookie: 7, offset: 4096, length: 1 << 40) }
        refused("compact BLOCK_STATUS after extended headers") { b in
            header(&b, type: NBD.Chunk.blockStatus, cookie: 8, offset: 0, length: 12)
            b.writeInteger(UInt32(1), endianness: .big)
            b.writeInteger(UInt32(4096), endianness: .big)
            b.writeInteger(UInt32(0), endianness: .big)
        }
        refused("a descriptor count that is not the chunk's") { b in
            header(&b, type: NBD.Chunk.blockStatusExtended, cookie: 8, offset: 0, length: 8 + 16)
            b.writeInteger(UInt32(1), endianness: .big)
            b.writeInteger(UInt32(2), endianness: .big)
            b.writeInteger(UInt64(4096), endianness: .big)
            b.writeInteger(UInt64(0), endianness: .big)
        }
        refused("descriptors whose sum wraps around 2^64") { b in
            header(&b, type: NBD.Chunk.blockStatusExtended, cookie: 8, offset: 0, length: 8 + 32)
            b.writeInteger(UInt32(1), endianness: .big)
            b.writeInteger(UInt32(2), endianness: .big)
            for _ in 0..<2 {
                b.writeInteger(UInt64.max - 10, endianness: .big)
                b.writeInteger(UInt64(0), endianness: .big)
            }
        }
        refused("status flags over 32 bits") { b in
            header(&b, type: NBD.Chunk.blockStatusExtended, cookie: 8, offset: 0, length: 8 + 16)
            b.writeInteger(UInt32(1), endianness: .big)
            b.writeInteger(UInt32(1), endianness: .big)
            b.writeInteger(UInt64(4096), endianness: .big)
            b.writeInteger(UInt64(1) << 40, endianness: .big)
        }
        refused("BLOCK_STATUS_EXT without extended headers", { b in
            var c = ByteBuffer()
            c.writeInteger(NBD.structuredReplyMagic, endianness: .big)
            c.writeInteger(NBD.Chunk.flagDone, endianness: .big)
            c.writeInteger(NBD.Chunk.blockStatusExtended, endianness: .big)
            c.writeInteger(UInt64(8), endianness: .big)
            c.writeInteger(UInt32(24), endianness: .big)
            c.writeInteger(UInt32(1), endianness: .big)
            c.writeInteger(UInt32(1), endianness: .big)
            c.writeInteger(UInt64(4096), endianness: .big)
            c.writeInteger(UInt64(0), endianness: .big)
            b.writeBuffer(&c)
        }, decoder: NBDReplyDecoder(exportSize: 6 << 30))
    }

    static let extendedDecoder = NBDReplyDecoder(exportSize: 6 << 30, extended: true)
}
