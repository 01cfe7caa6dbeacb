import FerryNBD
import FerryTestSupport
import NIOCore
import Testing

/// The NBD fuzz entry: its seeds (written with FERRY_WRITE_FUZZ_CORPUS=1) and committed inputs
/// replayed, and seeded mutants of them, none of which may trap or break a round trip.
@Suite struct NBDFuzzTests {
    static func seeds() -> [(name: String, bytes: [UInt8])] {
        var replies = ByteBuffer()
        NBDReply.chunk(cookie: 1, done: false, payload: .data(offset: 4096, bytes: ByteBuffer(bytes: [UInt8](repeating: 7, count: 100)))).write(to: &replies)
        NBDReply.chunk(cookie: 1, done: true, payload: .hole(offset: 4196, length: 1000)).write(to: &replies)
        NBDReply.chunk(cookie: 2, done: true, payload: .blockStatus(context: 1, descriptors: [.init(length: 4096, flags: 3), .init(length: 8192, flags: 0)])).write(to: &replies)
        NBDReply.simple(cookie: 3, error: 0, data: nil).write(to: &replies)
        NBDReply.chunk(cookie: 4, done: true, payload: .error(errno: 5, message: "bad", offset: 10)).write(to: &replies)
        var extendedReplies = ByteBuffer()
        for reply: NBDReply in [
            .chunk(cookie: 1, done: false, payload: .data(offset: 4096, bytes: ByteBuffer(bytes: [UInt8](repeating: 7, count: 100)))),
            .chunk(cookie: 1, done: true, payload: .hole(offset: 4196, length: 1000)),
            .chunk(cookie: 2, done: true, payload: .blockStatus(context: 1, descriptors: [.init(length: 4096, flags: 3), .init(length: 8192, flags: 0)])),
            .chunk(cookie: 3, done: true, payload: .none),
            .chunk(cookie: 4, done: true, payload: .error(errno: 5, message: "bad", offset: 10)),
        ] {
            reply.writeExtended(offset: NBDFuzz.pending[reply.cookie]?.offset ?? 0, to: &extendedReplies)
        }
        var client = ByteBuffer()
        client.writeInteger(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes, endianness: .big)
        NBDOption(.structuredReply).write(to: &client)
        NBDOption(.setMetaContext, data: NBDMetaContextRequest(exportName: "", queries: [NBD.baseAllocation]).bytes).write(to: &client)
        NBDOption(.list).write(to: &client)
        NBDOption(.go, data: NBDGoRequest(exportName: "").bytes).write(to: &client)
        NBDRequest(.read, cookie: 1, offset: 0, length: 4096).write(to: &client)
        NBDRequest(.write, cookie: 2, offset: 0, length: 4).write(to: &client)
        client.writeBytes([1, 2, 3, 4])
        NBDRequest(.blockStatus, flags: NBD.CommandFlag.reqOne, cookie: 3, offset: 0, length: 1 << 20).write(to: &client)
        var extended = ByteBuffer()
        extended.writeInteger(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes, endianness: .big)
        NBDOption(.extendedHeaders).write(to: &extended)
        NBDOption(.setMetaContext, data: NBDMetaContextRequest(exportName: "", queries: [NBD.baseAllocation]).bytes).write(to: &extended)
        NBDOption(.go, data: NBDGoRequest(exportName: "").bytes).write(to: &extended)
        NBDRequest(.read, cookie: 1, offset: 0, length: 4096).write(to: &extended, extended: true)
        NBDRequest(.write, cookie: 2, offset: 0, length: 4).write(to: &extended, extended: true)
        extended.writeBytes([1, 2, 3, 4])
        NBDRequest(flags: 0, type: NBD.Command.writeZeroes.rawValue, cookie: 3, offset: 0, length: 5 << 32).write(to: &extended, extended: true)
        NBDRequest(flags: NBD.CommandFlag.payloadLength, type: NBD.Command.flush.rawValue, cookie: 4, offset: 0, length: 2).write(to: &extended, extended: true)
        extended.writeBytes([0, 0])
        var server = NBDServerHandshake.greeting
        negotiation(acking: .structuredReply, to: &server)
        return [("replies", [0] + replies.readableBytesView), ("replies-extended", [0x81] + extendedReplies.readableBytesView), ("client", [1] + client.readableBytesView), ("client-extended", [1] + extended.readableBytesView), ("server", [2] + server.readableBytesView)] + tlsSeeds()
    }

    /// A server's replies from `first`'s ACK to GO's: base:allocation as context 1, a 1 MiB export.
    static func negotiation(acking first: NBD.Option, to buffer: inout ByteBuffer) {
        for reply in [
            NBDOptionReply(option: first.rawValue, type: NBD.Reply.ack),
            NBDOptionReply(option: NBD.Option.setMetaContext.rawValue, type: NBD.Reply.metaContext, data: [0, 0, 0, 1] + Array(NBD.baseAllocation.utf8)),
            NBDOptionReply(option: NBD.Option.setMetaContext.rawValue, type: NBD.Reply.ack),
            NBDOptionReply(option: NBD.Option.go.rawValue, type: NBD.Reply.info, data: NBDExportInfo(size: 1 << 20, transmissionFlags: 3).exportItem),
            NBDOptionReply(option: NBD.Option.go.rawValue, type: NBD.Reply.ack),
        ] { reply.write(to: &buffer) }
    }

    /// The TLS modes (0x82: a TLS-required server, 0x83: an nbds:// client): a length byte, the
    /// plaintext up to STARTTLS's ACK, then what comes over TLS.
    static func tlsSeeds() -> [(name: String, bytes: [UInt8])] {
        var before = ByteBuffer()
        before.writeInteger(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes, endianness: .big)
        NBDOption(.startTLS).write(to: &before)
        var after = ByteBuffer()
        NBDOption(.structuredReply).write(to: &after)
        NBDOption(.go, data: NBDGoRequest(exportName: "").bytes).write(to: &after)
        NBDRequest(.read, cookie: 1, offset: 0, length: 4096).write(to: &after)
        var greeting = NBDServerHandshake.greeting
        NBDOptionReply(option: NBD.Option.startTLS.rawValue, type: NBD.Reply.ack).write(to: &greeting)
        var overTLS = ByteBuffer()
        negotiation(acking: .extendedHeaders, to: &overTLS)
        return [
            ("client-tls", [0x82, UInt8(before.readableBytes)] + before.readableBytesView + after.readableBytesView),
            ("server-tls", [0x83, UInt8(greeting.readableBytes)] + greeting.readableBytesView + overTLS.readableBytesView),
        ]
    }

    @Test func seedsAndCommittedInputs() throws {
        let seeds = Self.seeds()
        try FuzzCorpus.writeSeeds("FuzzNBD", seeds)
        for (name, bytes) in seeds + (try FuzzCorpus.committed("FuzzNBD")) {
            do { try NBDFuzz.run(bytes) } catch { Issue.record("\(name): \(error)") }
        }
    }

    /// The extended seeds are valid streams (so mutants start from the new decoder paths).
    @Test func extendedSeedsAreValid() throws {
        let seeds = Dictionary(uniqueKeysWithValues: Self.seeds().map { ($0.name, $0.bytes) })
        var replies = ByteBuffer(bytes: try #require(seeds["replies-extended"]).dropFirst())
        let decoder = NBDReplyDecoder(exportSize: NBDFuzz.exportSize, extended: true)
        var count = 0
        while try decoder.next(from: &replies, pending: { NBDFuzz.pending[$0] }) != nil { count += 1 }
        #expect(count == 5 && replies.readableBytes == 0)
        var client = ByteBuffer(bytes: try #require(seeds["client-extended"]).dropFirst())
        var machine = NBDServerHandshake(exports: [NBDExportSpec(name: "", size: NBDFuzz.exportSize, writable: true)])
        guard case .transmission(let agreement) = machine.receive(&client).outcome else {
            Issue.record("no GO in the seed")
            return
        }
        #expect(agreement.extendedHeaders)
        var requests = 0
        while let r = try NBDRequest.decode(from: &client, extended: true) {
            client.moveReaderIndex(forwardBy: Int(r.payloadLength(extended: true)))
            requests += 1
        }
        #expect(requests == 4 && client.readableBytes == 0)
    }

    @Test func seededMutants() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("NBDFuzzTests.seededMutants seed \(seed)")
        var random = SeededRandom(seed: seed)
        for (name, bytes) in Self.seeds() {
            for _ in 0..<500 {
                var mutant = bytes
                for _ in 0..<Int(random.next() % 8 + 1) where mutant.count > 1 {
                    let at = Int(random.next() % UInt64(mutant.count - 1)) + 1
                    mutant[at] = UInt8(truncatingIfNeeded: random.next())
                }
                if random.next() % 4 == 0 { mutant = Array(mutant.prefix(Int(random.next() % UInt64(mutant.count)) + 1)) }
                do { try NBDFuzz.run(mutant) } catch { Issue.record("\(name) mutant (seed \(seed)): \(error)") }
            }
        }
    }
}
