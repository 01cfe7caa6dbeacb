public import NIOCore

/// What a client and server agreed on before the transmission phase.
public struct NBDNegotiated: Sendable, Equatable {
    public var size: UInt64
    public var transmissionFlags: UInt16
    public var blockSize: NBDBlockSize?
    /// True after `NBD_OPT_STRUCTURED_REPLY` was acknowledged.
    public var structuredReplies: Bool
    /// The id the server gave `base:allocation`, when it agreed to it.
    public var baseAllocation: UInt32?
    /// True after `NBD_OPT_EXTENDED_HEADERS` was acknowledged (then `structuredReplies` is too).
    public var extendedHeaders = false

    public func has(_ flag: UInt16) -> Bool { transmissionFlags & flag != 0 }
    public var isReadOnly: Bool { has(NBD.TransmissionFlag.readOnly) }
}

/// The client side of fixed newstyle negotiation as a pure state machine (proto.md "Fixed
/// newstyle negotiation"): bytes from the server in, bytes to send and finally the agreement out.
/// The order is what nbdinfo, nbdcopy and qemu-img send: STRUCTURED_REPLY, SET_META_CONTEXT
/// base:allocation, GO with INFO_BLOCK_SIZE; EXPORT_NAME only when GO is unsupported.
///
/// With `tls`, STARTTLS is the first option (proto.md "Client-side requirements": so that no
/// option travels in plaintext); on its ACK the machine waits (`awaitsTLS`) until the channel
/// says TLS is up (`tlsEstablished()`), then negotiates from the start over TLS. Any refusal of
/// STARTTLS ends the connection: `nbds://` never falls back to plaintext.
public struct NBDClientHandshake: Sendable {
    enum State: Sendable {
        case greeting, startTLS, tlsHandshake, extendedHeaders, structuredReply, metaContext, go, exportName, done
    }

    public let exportName: String
    public let peer: String
    /// TLS is required (the URI was `nbds`).
    public let tls: Bool
    private(set) var state = State.greeting
    private var noZeroes = false
    private var structured = false
    private var extended = false
    private var context: UInt32?
    private var info = NBDExportInfo()
    private var replies = 0

    public init(exportName: String, peer: String, tls: Bool = false) {
        self.exportName = exportName
        self.peer = peer
        self.tls = tls
    }

    /// True between STARTTLS's ACK and `tlsEstablished()`: the channel must start TLS now.
    public var awaitsTLS: Bool { state == .tlsHandshake }

    /// TLS is up: the negotiation starts over (no state from before STARTTLS is kept, proto.md
    /// `NBD_OPT_STARTTLS`). Returns the first option to send over TLS.
    public mutating func tlsEstablished() -> ByteBuffer {
        precondition(state == .tlsHandshake, "TLS established while not waiting for it")
        replies = 0
        state = .extendedHeaders
        var b = ByteBuffer()
        NBDOption(.extendedHeaders).write(to: &b)
        return b
    }

    /// Consumes what it can of `buffer`; returns bytes to send and, once the transmission phase
    /// begins, the agreement. Throws `NBDError` when the server breaks the protocol or refuses.
    public mutating func receive(_ buffer: inout ByteBuffer) throws -> (send: [ByteBuffer], ready: NBDNegotiated?) {
        var out: [ByteBuffer] = []
        while true {
            switch state {
            case .done:
                return (out, nil)
            case .greeting:
                guard buffer.readableBytes >= 18 else { return (out, nil) }
                let magic = buffer.readInteger(endianness: .big, as: UInt64.self) ?? 0
                let second = buffer.readInteger(endianness: .big, as: UInt64.self) ?? 0
                guard magic == NBD.nbdMagic else { throw fail(.protocolViolation, "the greeting is not NBDMAGIC: this is no NBD server") }
                guard second == NBD.optionMagic else {
                    throw fail(.refused, "the server speaks oldstyle NBD (0x\(String(second, radix: 16))); ferry needs fixed newstyle")
                }
                let flags = buffer.readInteger(endianness: .big, as: UInt16.self) ?? 0
                guard flags & NBD.HandshakeFlag.fixedNewstyle != 0 else { throw fail(.refused, "the server does not offer fixed newstyle negotiation") }
                noZeroes = flags & NBD.HandshakeFlag.noZeroes != 0
                var b = ByteBuffer()
                b.writeInteger(NBD.ClientFlag.fixedNewstyle | (noZeroes ? NBD.ClientFlag.noZeroes : 0), endianness: .big)
                NBDOption(tls ? .startTLS : .extendedHeaders).write(to: &b)
                out.append(b)
                state = tls ? .startTLS : .extendedHeaders
            case .tlsHandshake:
                // After the ACK only TLS records may come, and only once the channel speaks TLS:
                // plaintext here would be read as if it were protected (an injection, CVE-2021-3716 style).
                guard buffer.readableBytes == 0 else {
                    throw fail(.protocolViolation, "\(buffer.readableBytes) plaintext bytes after STARTTLS was acknowledged")
                }
                return (out, nil)
            case .exportName:
                let need = 10 + (noZeroes ? 0 : 124)
                guard buffer.readableBytes >= need else { return (out, nil) }
                let size = buffer.readInteger(endianness: .big, as: UInt64.self) ?? 0
                let flags = buffer.readInteger(endianness: .big, as: UInt16.self) ?? 0
                buffer.moveReaderIndex(forwardBy: need - 10)
                guard size <= UInt64(Int64.max) else { throw fail(.protocolViolation, "export size \(size) is over 2^63") }
                state = .done
                return (out, agreement(size: size, flags: flags))
            case .startTLS, .extendedHeaders, .structuredReply, .metaContext, .go:
                guard let reply = try NBDOptionReply.decode(from: &buffer) else { return (out, nil) }
                replies += 1
                guard replies <= NBD.Limit.repliesPerOption else { throw fail(.protocolViolation, "more than \(NBD.Limit.repliesPerOption) option replies") }
                if let ready = try take(reply, &out) { return (out, ready) }
            }
        }
    }

    private mutating func take(_ reply: NBDOptionReply, _ out: inout [ByteBuffer]) throws -> NBDNegotiated? {
        let expected: NBD.Option
        switch state {
        case .startTLS: expected = .startTLS
        case .extendedHeaders: expected = .extendedHeaders
        case .structuredReply: expected = .structuredReply
        case .metaContext: expected = .setMetaContext
        default: expected = .go
        }
        guard reply.option == expected.rawValue else {
            throw fail(.protocolViolation, "a reply to option \(reply.option) while option \(expected.rawValue) was asked")
        }
        if reply.type == NBD.Reply.errTLSRequired {
            // FORCEDTLS (qemu-nbd --tls-creds, nbdkit --tls=require) answers every option so.
            throw fail(.tls, tls ? "the server still demands TLS after STARTTLS" : "the server requires TLS: use nbds:// (or nbds+unix://) with tls-certificates=DIR")
        }
        switch (state, reply.type) {
        case (.startTLS, NBD.Reply.ack):
            replies = 0
            state = .tlsHandshake
        case (.startTLS, _) where reply.isError:
            let text = String(decoding: reply.data, as: UTF8.self)
            throw fail(
                .tls,
                "the server refused STARTTLS (\(Self.errorName(reply.type))\(text.isEmpty ? "" : ": " + text)); nbds:// never falls back to plaintext (nbd:// connects without TLS)")
        case (.extendedHeaders, NBD.Reply.ack):
            // Extended headers imply structured replies: on to the meta context.
            extended = true
            structured = true
            replies = 0
            var b = ByteBuffer()
            NBDOption(.setMetaContext, data: NBDMetaContextRequest(exportName: exportName, queries: [NBD.baseAllocation]).bytes).write(to: &b)
            state = .metaContext
            out.append(b)
        case (.extendedHeaders, _) where reply.isError:
            // Older servers (qemu-nbd < 8.2, nbdkit < 1.36): compact headers, structured replies.
            replies = 0
            var b = ByteBuffer()
            NBDOption(.structuredReply).write(to: &b)
            state = .structuredReply
            out.append(b)
        case (.structuredReply, _) where reply.type == NBD.Reply.ack || reply.isError:
            structured = reply.type == NBD.Reply.ack
            replies = 0
            var b = ByteBuffer()
            if structured {
                NBDOption(.setMetaContext, data: NBDMetaContextRequest(exportName: exportName, queries: [NBD.baseAllocation]).bytes).write(to: &b)
                state = .metaContext
            } else {
                sendGo(&b)
            }
            out.append(b)
        case (.metaContext, NBD.Reply.metaContext):
            var r = NBDWire.Reader(reply.data, what: "NBD_REP_META_CONTEXT")
            let id = try r.u32()
            if String(decoding: try r.take(r.remaining), as: UTF8.self) == NBD.baseAllocation { context = id }
        case (.metaContext, _) where reply.type == NBD.Reply.ack || reply.isError:
            if reply.isError { context = nil }
            replies = 0
            var b = ByteBuffer()
            sendGo(&b)
            out.append(b)
        case (.go, NBD.Reply.info):
            try info.apply(item: reply.data)
        case (.go, NBD.Reply.ack):
            guard let size = info.size else { throw fail(.protocolViolation, "GO acknowledged without NBD_INFO_EXPORT") }
            state = .done
            return agreement(size: size, flags: info.transmissionFlags)
        case (.go, NBD.Reply.errUnsupported):
            // An old server: EXPORT_NAME has no reply header and no way to say no but hanging up.
            var b = ByteBuffer()
            NBDOption(.exportName, data: Array(exportName.utf8)).write(to: &b)
            out.append(b)
            state = .exportName
        case (.go, _) where reply.isError:
            let text = String(decoding: reply.data, as: UTF8.self)
            let why = reply.type == NBD.Reply.errUnknown ? "no export named \"\(exportName)\"" : "GO failed (error 0x\(String(reply.type, radix: 16)))"
            throw fail(.refused, why + (text.isEmpty ? "" : ": " + text))
        default:
            throw fail(.protocolViolation, "unexpected option reply type 0x\(String(reply.type, radix: 16)) to option \(reply.option)")
        }
        return nil
    }

    private mutating func sendGo(_ b: inout ByteBuffer) {
        NBDOption(.go, data: NBDGoRequest(exportName: exportName).bytes).write(to: &b)
        state = .go
    }

    private func agreement(size: UInt64, flags: UInt16) -> NBDNegotiated {
        NBDNegotiated(
            size: size, transmissionFlags: flags, blockSize: info.blockSize, structuredReplies: structured,
            baseAllocation: structured ? context : nil, extendedHeaders: extended)
    }

    private func fail(_ code: NBDError.Code, _ detail: String) -> NBDError { NBDError(code, peer, detail) }

    static func errorName(_ type: UInt32) -> String {
        switch type {
        case NBD.Reply.errUnsupported: return "NBD_REP_ERR_UNSUP"
        case NBD.Reply.errPolicy: return "NBD_REP_ERR_POLICY"
        case NBD.Reply.errInvalid: return "NBD_REP_ERR_INVALID"
        default: return "error 0x\(String(type, radix: 16))"
        }
    }
}
