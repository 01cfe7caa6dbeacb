import FerryNBD
import NIOCore
import Testing

/// The STARTTLS transitions of both handshake machines, one line each (proto.md "TLS support":
/// FORCEDTLS on the server, TLS-required on the client), and the two machines talking.
@Suite struct NBDTLSHandshakeTests {
    static let exports = [NBDExportSpec(name: "disk", size: 1 << 20, writable: false)]

    // MARK: the client

    /// A client past the greeting, and the options it sent (after the 4 flag bytes).
    static func client(tls: Bool) throws -> (NBDClientHandshake, [UInt32]) {
        var machine = NBDClientHandshake(exportName: "disk", peer: "test", tls: tls)
        var greeting = NBDServerHandshake.greeting
        let (send, _) = try machine.receive(&greeting)
        var sent = ByteBuffer()
        for var b in send { sent.writeBuffer(&b) }
        sent.moveReaderIndex(forwardBy: 4)
        return (machine, try options(&sent))
    }

    static func options(_ buffer: inout ByteBuffer) throws -> [UInt32] {
        var codes: [UInt32] = []
        while let option = try NBDOption.decode(from: &buffer) { codes.append(option.code) }
        return codes
    }

    static func reply(_ option: NBD.Option, _ type: UInt32, then extra: [UInt8] = []) -> ByteBuffer {
        var b = ByteBuffer()
        NBDOptionReply(option: option.rawValue, type: type).write(to: &b)
        b.writeBytes(extra)
        return b
    }

    static func error(_ body: () throws -> Void) -> NBDError? {
        do { try body() } catch let e as NBDError { return e } catch { return nil }
        return nil
    }

    @Test func clientWithTLSSendsStartTLSFirst() throws { #expect(try Self.client(tls: true).1 == [NBD.Option.startTLS.rawValue]) }

    @Test func clientWithoutTLSNeverSendsStartTLS() throws { #expect(try Self.client(tls: false).1 == [NBD.Option.extendedHeaders.rawValue]) }

    @Test func clientWaitsForTLSAfterTheAck() throws {
        var (machine, _) = try Self.client(tls: true)
        var ack = Self.reply(.startTLS, NBD.Reply.ack)
        #expect(try machine.receive(&ack).send.isEmpty && machine.awaitsTLS)
    }

    @Test func clientRefusesPlaintextBehindTheAck() throws {
        var (machine, _) = try Self.client(tls: true)
        var ack = Self.reply(.startTLS, NBD.Reply.ack, then: [1, 2, 3])
        #expect(Self.error { _ = try machine.receive(&ack) }?.code == .protocolViolation)
    }

    @Test func clientNegotiatesAfreshOverTLS() throws {
        var (machine, _) = try Self.client(tls: true)
        var ack = Self.reply(.startTLS, NBD.Reply.ack)
        _ = try machine.receive(&ack)
        var sent = machine.tlsEstablished()
        #expect(try Self.options(&sent) == [NBD.Option.extendedHeaders.rawValue] && !machine.awaitsTLS)
    }

    @Test func clientRefusesAServerThatWillNotStartTLS() throws {
        for type in [NBD.Reply.errPolicy, NBD.Reply.errUnsupported, NBD.Reply.errInvalid] {
            var (machine, _) = try Self.client(tls: true)
            var refusal = Self.reply(.startTLS, type)
            #expect(Self.error { _ = try machine.receive(&refusal) }?.code == .tls)
        }
    }

    @Test func plaintextClientIsToldToUseNbds() throws {
        var (machine, _) = try Self.client(tls: false)
        var required = Self.reply(.extendedHeaders, NBD.Reply.errTLSRequired)
        #expect(Self.error { _ = try machine.receive(&required) }?.description.contains("use nbds://") == true)
    }

    // MARK: the server

    /// A server's answers to `options` (after the client flags), and the outcome.
    static func server(_ machine: inout NBDServerHandshake, _ options: [NBDOption], flags: Bool = true) -> ([UInt32], NBDServerHandshake.Outcome) {
        var input = ByteBuffer()
        if flags { input.writeInteger(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes, endianness: .big) }
        for option in options { option.write(to: &input) }
        var (send, outcome) = machine.receive(&input)
        var types: [UInt32] = []
        while let reply = try? NBDOptionReply.decode(from: &send) { types.append(reply.type) }
        return (types, outcome)
    }

    static func go() -> NBDOption { NBDOption(.go, data: NBDGoRequest(exportName: "disk").bytes) }

    static func forced() -> NBDServerHandshake { NBDServerHandshake(exports: exports, tls: true) }

    @Test func forcedTLSRefusesGoBeforeStartTLS() {
        var m = Self.forced()
        #expect(Self.server(&m, [Self.go()]) == ([NBD.Reply.errTLSRequired], .negotiating))
    }

    @Test func forcedTLSRefusesListAndUnknownOptions() {
        var m = Self.forced()
        #expect(Self.server(&m, [NBDOption(.list), NBDOption(code: 99), NBDOption(.structuredReply)]).0 == Array(repeating: NBD.Reply.errTLSRequired, count: 3))
    }

    @Test func forcedTLSDropsExportNameBeforeStartTLS() {
        var m = Self.forced()
        guard case .close = Self.server(&m, [NBDOption(.exportName, data: Array("disk".utf8))]).1 else {
            Issue.record("not dropped")
            return
        }
    }

    @Test func forcedTLSTakesAbort() {
        var m = Self.forced()
        let (types, outcome) = Self.server(&m, [NBDOption(.abort)])
        guard types == [NBD.Reply.ack], case .close = outcome else {
            Issue.record("\(types) \(outcome)")
            return
        }
    }

    @Test func startTLSWithDataIsInvalid() {
        var m = Self.forced()
        #expect(Self.server(&m, [NBDOption(.startTLS, data: [0])]) == ([NBD.Reply.errInvalid], .negotiating))
    }

    @Test func startTLSIsAcknowledged() {
        var m = Self.forced()
        #expect(Self.server(&m, [NBDOption(.startTLS)]) == ([NBD.Reply.ack], .startTLS))
    }

    @Test func optionsPipelinedBehindStartTLSDropTheClient() {
        var m = Self.forced()
        guard case .close = Self.server(&m, [NBDOption(.startTLS), NBDOption(.structuredReply)]).1 else {
            Issue.record("not dropped")
            return
        }
    }

    @Test func afterTLSTheHagglingStartsOverAndASecondStartTLSIsInvalid() {
        var m = Self.forced()
        _ = Self.server(&m, [NBDOption(.startTLS)])
        m.tlsEstablished()
        #expect(Self.server(&m, [NBDOption(.startTLS), NBDOption(.structuredReply)], flags: false).0 == [NBD.Reply.errInvalid, NBD.Reply.ack])
        let (_, outcome) = Self.server(&m, [Self.go()], flags: false)
        #expect(outcome == .transmission(NBDSessionAgreement(export: 0, structuredReplies: true, baseAllocation: false)))
    }

    @Test func withoutTLSStartTLSIsPolicy() {
        var m = NBDServerHandshake(exports: Self.exports)
        #expect(Self.server(&m, [NBDOption(.startTLS)]) == ([NBD.Reply.errPolicy], .negotiating))
    }

    // MARK: both

    /// The two machines in memory, TLS "established" whenever both wait for it: the client's
    /// options go over TLS and it ends with what it would get without TLS.
    @Test func bothMachinesNegotiateThroughStartTLS() throws {
        var client = NBDClientHandshake(exportName: "disk", peer: "test", tls: true)
        var server = Self.forced()
        var toClient = NBDServerHandshake.greeting
        var agreed: NBDNegotiated?
        var transmission: NBDSessionAgreement?
        for _ in 0..<32 where agreed == nil {
            let (send, ready) = try client.receive(&toClient)
            agreed = ready
            var toServer = ByteBuffer()
            for var b in send { toServer.writeBuffer(&b) }
            if client.awaitsTLS, server.tlsActive == false, toServer.readableBytes == 0 {
                server.tlsEstablished()
                var first = client.tlsEstablished()
                toServer.writeBuffer(&first)
            }
            var (reply, outcome) = server.receive(&toServer)
            if case .transmission(let t) = outcome { transmission = t }
            toClient.writeBuffer(&reply)
        }
        #expect(agreed?.size == 1 << 20 && agreed?.extendedHeaders == true && agreed?.baseAllocation != nil)
        #expect(transmission?.extendedHeaders == true && server.tlsActive)
    }
}
