import FerryDisk
import FerryNBD
import NIOCore
import Testing

/// The wire codec on its own: round trips, and a hostile server's replies refused.
@Suite struct NBDCodecTests {
    let pending: [UInt64: NBDPending] = [
        7: NBDPending(command: .read, offset: 4096, length: 8192),
        8: NBDPending(command: .blockStatus, offset: 0, length: 1 << 20),
        9: NBDPending(command: .write, offset: 0, length: 512),
    ]
    let decoder = NBDReplyDecoder(exportSize: 1 << 20)

    func decode(_ reply: NBDReply) throws -> NBDReply? {
        var b = ByteBuffer()
        reply.write(to: &b)
        return try decoder.next(from: &b, pending: { pending[$0] })
    }

    func decodeBytes(_ write: (inout ByteBuffer) -> Void) throws -> NBDReply? {
        var b = ByteBuffer()
        write(&b)
        return try decoder.next(from: &b, pending: { pending[$0] })
    }

    @Test func repliesRoundTrip() throws {
        let replies: [NBDReply] = [
            .simple(cookie: 9, error: 0, data: nil),
            .simple(cookie: 7, error: 5, data: nil),
            .simple(cookie: 7, error: 0, data: ByteBuffer(bytes: [UInt8](repeating: 0xAB, count: 8192))),
            .chunk(cookie: 7, done: false, payload: .data(offset: 4096, bytes: ByteBuffer(bytes: [1, 2, 3]))),
            .chunk(cookie: 7, done: true, payload: .hole(offset: 8192, length: 4096)),
            .chunk(cookie: 8, done: true, payload: .blockStatus(context: 1, descriptors: [.init(length: 65536, flags: 3), .init(length: 512, flags: 0)])),
            .chunk(cookie: 7, done: true, payload: .error(errno: 5, message: "bad sector", offset: 5000)),
            .chunk(cookie: 9, done: true, payload: .error(errno: 28, message: "", offset: nil)),
            .chunk(cookie: 9, done: true, payload: .none),
        ]
        for reply in replies { #expect(try decode(reply) == reply) }
    }

    @Test func incompleteReplyConsumesNothing() throws {
        var whole = ByteBuffer()
        NBDReply.chunk(cookie: 7, done: true, payload: .data(offset: 4096, bytes: ByteBuffer(bytes: [1, 2, 3, 4]))).write(to: &whole)
        for cut in 0..<whole.readableBytes {
            var part = whole.getSlice(at: 0, length: cut) ?? ByteBuffer()
            #expect(try decoder.next(from: &part, pending: { pending[$0] }) == nil)
            #expect(part.readableBytes == cut)
        }
    }

    @Test func unknownCookieIsRefused() {
        #expect(throws: NBDError.self) { try decode(.simple(cookie: 99, error: 0, data: nil)) }
    }

    @Test func chunksOutsideTheRequestAreRefused() {
        // Data before the request, data past its end, a hole past its end, data for a WRITE.
        #expect(throws: NBDError.self) { try decode(.chunk(cookie: 7, done: true, payload: .data(offset: 0, bytes: ByteBuffer(bytes: [1])))) }
        #expect(throws: NBDError.self) { try decode(.chunk(cookie: 7, done: true, payload: .data(offset: 12287, bytes: ByteBuffer(bytes: [1, 2])))) }
        #expect(throws: NBDError.self) { try decode(.chunk(cookie: 7, done: true, payload: .hole(offset: 8192, length: 4097))) }
        #expect(throws: NBDError.self) { try decode(.chunk(cookie: 9, done: true, payload: .data(offset: 0, bytes: ByteBuffer(bytes: [1])))) }
        #expect(throws: NBDError.self) { try decode(.chunk(cookie: 7, done: true, payload: .hole(offset: 4096, length: 0))) }
    }

    @Test func hugeChunksAreRefusedBeforeTheirBytesArrive() {
        // A chunk header claiming 4 GiB - 1: refused from its 20-byte header alone.
        #expect(throws: NBDError.self) {
            try decodeBytes { b in
                b.writeInteger(NBD.structuredReplyMagic, endianness: .big)
                b.writeInteger(UInt16(1), endianness: .big)
                b.writeInteger(NBD.Chunk.offsetData, endianness: .big)
                b.writeInteger(UInt64(7), endianness: .big)
                b.writeInteger(UInt32.max, endianness: .big)
            }
        }
        #expect(throws: NBDError.self) {
            try decodeBytes { b in
                b.writeInteger(NBD.structuredReplyMagic, endianness: .big)
                b.writeInteger(UInt16(1), endianness: .big)
                b.writeInteger(NBD.Chunk.blockStatus, endianness: .big)
                b.writeInteger(UInt64(8), endianness: .big)
                b.writeInteger(NBD.Limit.metadataChunk + 1, endianness: .big)
            }
        }
    }

    @Test func blockStatusPastTheEndIsRefused() {
        #expect(throws: NBDError.self) {
            try decode(.chunk(cookie: 8, done: true, payload: .blockStatus(context: 1, descriptors: [.init(length: (1 << 20) + 1, flags: 0)])))
        }
        #expect(throws: NBDError.self) {
            try decode(.chunk(cookie: 8, done: true, payload: .blockStatus(context: 1, descriptors: [.init(length: 0, flags: 0)])))
        }
        #expect(throws: NBDError.self) { try decode(.chunk(cookie: 7, done: true, payload: .blockStatus(context: 1, descriptors: [.init(length: 1, flags: 0)]))) }
    }

    @Test func badMagicAndNoneWithoutDoneAreRefused() {
        #expect(throws: NBDError.self) { try decodeBytes { $0.writeInteger(UInt32(0xdead_beef), endianness: .big) } }
        #expect(throws: NBDError.self) { try decode(.chunk(cookie: 9, done: false, payload: .none)) }
    }

    @Test func optionsRoundTripAndAreBounded() throws {
        let option = NBDOption(.go, data: NBDGoRequest(exportName: "disk", infoRequests: [NBD.Info.blockSize, NBD.Info.name]).bytes)
        var b = ByteBuffer()
        option.write(to: &b)
        let decoded = try #require(try NBDOption.decode(from: &b))
        #expect(decoded == option)
        #expect(try NBDGoRequest(parsing: decoded.data) == NBDGoRequest(exportName: "disk", infoRequests: [NBD.Info.blockSize, NBD.Info.name]))
        var huge = ByteBuffer()
        huge.writeInteger(NBD.optionMagic, endianness: .big)
        huge.writeInteger(UInt32(7), endianness: .big)
        huge.writeInteger(NBD.Limit.optionLength + 1, endianness: .big)
        #expect(throws: NBDError.self) { try NBDOption.decode(from: &huge) }
        let meta = NBDMetaContextRequest(exportName: "", queries: ["base:allocation", "qemu:dirty-bitmap:x"])
        #expect(try NBDMetaContextRequest(parsing: meta.bytes) == meta)
        // A count of 2^32-1 queries in 8 bytes: runs out of data, does not loop 4 billion times.
        #expect(throws: NBDError.self) { try NBDMetaContextRequest(parsing: [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]) }
    }

    @Test func uris() throws {
        #expect(try NBDURI(parsing: "nbd://example.com/disk%201") == NBDURI(endpoint: .tcp(host: "example.com", port: 10809), exportName: "disk 1"))
        #expect(try NBDURI(parsing: "nbd://[::1]:1234/") == NBDURI(endpoint: .tcp(host: "::1", port: 1234), exportName: ""))
        #expect(try NBDURI(parsing: "nbd://h:99") == NBDURI(endpoint: .tcp(host: "h", port: 99), exportName: ""))
        #expect(try NBDURI(parsing: "nbd+unix:///x?socket=/tmp/a%20b.sock") == NBDURI(endpoint: .unix(path: "/tmp/a b.sock"), exportName: "x"))
        #expect(try NBDURI(parsing: "nbd+unix:///x?socket=/tmp/s").description == "nbd+unix:///x?socket=/tmp/s")
        for bad in ["nbd+unix:///x", "nbd://h:0/", "nbd://h:99999/", "nbds://h/?tls-type=anon", "nbd://h/?tls-certificates=/d", "nbd://alice@h/", "nbd:///x", "nbd://h/?tls=on", "nbd+unix://host/?socket=s"] {
            #expect(throws: NBDError.self, "\(bad)") { try NBDURI(parsing: bad) }
        }
    }
}
