public import NIOCore

/// One export a server offers: its name and size, and whether clients may write.
public struct NBDExportSpec: Sendable, Equatable {
    public var name: String
    public var size: UInt64
    public var writable: Bool
    /// Whether the export answers BLOCK_STATUS from real allocation.
    public var extents: Bool

    public init(name: String, size: UInt64, writable: Bool, extents: Bool = true) {
        self.name = name
        self.size = size
        self.writable = writable
        self.extents = extents
    }

    /// The transmission flags ferry's server sends for it. Multi-conn is safe: every connection
    /// goes to the same `BlockDevice`, so a flush on one covers the writes of all.
    public var transmissionFlags: UInt16 {
        typealias F = NBD.TransmissionFlag
        var flags = F.hasFlags | F.sendFlush | F.canMultiConn | F.sendDF
        flags |= writable ? F.sendWriteZeroes | F.sendTrim : F.readOnly
        return flags
    }
}

/// What the transmission phase of one connection works with.
public struct NBDSessionAgreement: Sendable, Equatable {
    public var export: Int
    public var structuredReplies: Bool
    public var baseAllocation: Bool
    /// True after `NBD_OPT_EXTENDED_HEADERS` was acknowledged: 32-byte requests and replies,
    /// every reply a chunk (implies `structuredReplies`).
    public var extendedHeaders = false

    public init(export: Int, structuredReplies: Bool, baseAllocation: Bool, extendedHeaders: Bool = false) {
        self.export = export
        self.structuredReplies = structuredReplies || extendedHeaders
        self.baseAllocation = baseAllocation
        self.extendedHeaders = extendedHeaders
    }
}

/// The server side of fixed newstyle negotiation as a pure state machine: the greeting, the
/// client's flags, then options answered one by one until GO or EXPORT_NAME picks an export.
/// Anything a hostile client could use to hold resources is bounded (`NBD.Limit`).
///
/// With `tls` the server is TLS-required (proto.md "FORCEDTLS mode"): before STARTTLS every
/// option but STARTTLS and ABORT is answered `NBD_REP_ERR_TLS_REQD` (EXPORT_NAME, which cannot
/// be refused, drops the client); STARTTLS is acknowledged and the machine waits (`.startTLS`)
/// until the channel says TLS is up (`tlsEstablished()`); then the haggling starts over, and a
/// second STARTTLS is `NBD_REP_ERR_INVALID`. Without `tls`, STARTTLS is `NBD_REP_ERR_POLICY`.
public struct NBDServerHandshake: Sendable {
    /// The id of `base:allocation` in META_CONTEXT replies (any value is valid; nbdkit uses 1 too).
    public static let baseAllocationID: UInt32 = 1
    public static let blockSize = NBDBlockSize(minimum: 1, preferred: 4096, maximum: NBD.Limit.payload)

    public enum Outcome: Sendable, Equatable {
        case negotiating
        /// Start the transmission phase.
        case transmission(NBDSessionAgreement)
        /// Close the connection (ABORT, a client the spec says to drop, a protocol violation).
        case close(reason: String)
        /// STARTTLS was acknowledged (in `send`): start TLS now, then call `tlsEstablished()`.
        case startTLS
    }

    enum State: Sendable { case clientFlags, options, tlsHandshake, finished }

    public let exports: [NBDExportSpec]
    /// TLS is configured: the server requires it.
    public let tls: Bool
    /// True once TLS is up on this connection.
    public private(set) var tlsActive = false
    private var state = State.clientFlags
    private var noZeroes = false
    private var structured = false
    private var extended = false
    private var selected = false
    private var options = 0

    public init(exports: [NBDExportSpec], tls: Bool = false) {
        self.exports = exports
        self.tls = tls
    }

    /// TLS is up: nothing negotiated before STARTTLS is kept (proto.md `NBD_OPT_STARTTLS`).
    public mutating func tlsEstablished() {
        precondition(state == .tlsHandshake, "TLS established while not waiting for it")
        tlsActive = true
        structured = false
        extended = false
        selected = false
        state = .options
    }

    /// The server's first bytes: NBDMAGIC, IHAVEOPT, FIXED_NEWSTYLE|NO_ZEROES.
    public static var greeting: ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(NBD.nbdMagic, endianness: .big)
        b.writeInteger(NBD.optionMagic, endianness: .big)
        b.writeInteger(NBD.HandshakeFlag.fixedNewstyle | NBD.HandshakeFlag.noZeroes, endianness: .big)
        return b
    }

    /// The export a name selects: an exact name, or "" for the first (the default export).
    public func export(named name: String) -> Int? {
        if let i = exports.firstIndex(where: { $0.name == name }) { return i }
        return name.isEmpty && !exports.isEmpty ? 0 : nil
    }

    public mutating func receive(_ buffer: inout ByteBuffer) -> (send: ByteBuffer, outcome: Outcome) {
        var out = ByteBuffer()
        while true {
            switch state {
            case .finished:
                return (out, .negotiating)
            case .tlsHandshake:
                // Options the client sent behind STARTTLS, in plaintext, must not be taken as if
                // TLS protected them (nbdkit's CVE-2021-3716): drop the client.
                guard buffer.readableBytes == 0 else {
                    state = .finished
                    return (out, .close(reason: "plaintext after STARTTLS"))
                }
                return (out, .negotiating)
            case .clientFlags:
                guard let flags = buffer.readInteger(endianness: .big, as: UInt32.self) else { return (out, .negotiating) }
                guard flags & ~(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes) == 0 else {
                    state = .finished
                    return (out, .close(reason: "unknown client flags 0x\(String(flags, radix: 16))"))
                }
                noZeroes = flags & NBD.ClientFlag.noZeroes != 0
                state = .options
            case .options:
                let option: NBDOption
                do {
                    guard let o = try NBDOption.decode(from: &buffer) else { return (out, .negotiating) }
                    option = o
                } catch {
                    state = .finished
                    return (out, .close(reason: "\(error)"))
                }
                options += 1
                guard options <= NBD.Limit.optionsPerConnection else {
                    state = .finished
                    return (out, .close(reason: "more than \(NBD.Limit.optionsPerConnection) options"))
                }
                let outcome = answer(option, &out)
                if outcome == .startTLS {
                    state = .tlsHandshake
                    guard buffer.readableBytes == 0 else { continue }  // refused by .tlsHandshake above
                    return (out, .startTLS)
                }
                if outcome != .negotiating {
                    state = .finished
                    return (out, outcome)
                }
            }
        }
    }

    private mutating func answer(_ option: NBDOption, _ out: inout ByteBuffer) -> Outcome {
        func reply(_ type: UInt32, _ data: [UInt8] = []) { NBDOptionReply(option: option.code, type: type, data: data).write(to: &out) }
        func error(_ type: UInt32, _ text: String) { reply(type, Array(text.utf8)) }
        if tls, !tlsActive { return beforeTLS(option, &out) }
        switch NBD.Option(rawValue: option.code) {
        case .exportName:
            // The spec forbids EXPORT_NAME after extended headers: it has no way to refuse.
            if extended { return .close(reason: "EXPORT_NAME after EXTENDED_HEADERS") }
            guard let index = export(named: String(decoding: option.data, as: UTF8.self)) else {
                return .close(reason: "EXPORT_NAME of an unknown export")  // the spec's only answer: hang up
            }
            out.writeInteger(exports[index].size, endianness: .big)
            out.writeInteger(exports[index].transmissionFlags, endianness: .big)
            if !noZeroes { out.writeRepeatingByte(0, count: 124) }
            return .transmission(NBDSessionAgreement(export: index, structuredReplies: structured, baseAllocation: selected))
        case .abort:
            reply(NBD.Reply.ack)
            return .close(reason: "the client aborted")
        case .list:
            guard option.data.isEmpty else {
                error(NBD.Reply.errInvalid, "LIST takes no data")
                return .negotiating
            }
            for spec in exports {
                var w = NBDWire.Writer()
                w.string32(spec.name)
                reply(NBD.Reply.server, w.bytes)
            }
            reply(NBD.Reply.ack)
        case .structuredReply:
            guard option.data.isEmpty else {
                error(NBD.Reply.errInvalid, "STRUCTURED_REPLY takes no data")
                return .negotiating
            }
            guard !extended else {
                error(NBD.Reply.errExtHeaderRequired, "extended headers are agreed already; STRUCTURED_REPLY cannot go back")
                return .negotiating
            }
            structured = true
            reply(NBD.Reply.ack)
        case .extendedHeaders:
            guard option.data.isEmpty else {
                error(NBD.Reply.errInvalid, "EXTENDED_HEADERS takes no data")
                return .negotiating
            }
            extended = true
            structured = true
            reply(NBD.Reply.ack)
        case .listMetaContext, .setMetaContext:
            let isSet = option.code == NBD.Option.setMetaContext.rawValue
            guard let request = try? NBDMetaContextRequest(parsing: option.data) else {
                error(NBD.Reply.errInvalid, "a malformed meta context request")
                return .negotiating
            }
            guard !isSet || structured else {
                error(NBD.Reply.errInvalid, "SET_META_CONTEXT needs structured replies first")
                return .negotiating
            }
            guard let index = export(named: request.exportName) else {
                error(NBD.Reply.errUnknown, "no export named \"\(request.exportName)\"")
                return .negotiating
            }
            let wanted = request.queries.contains { $0 == NBD.baseAllocation || $0 == "base:" } || (!isSet && request.queries.isEmpty)
            let offered = wanted && exports[index].extents
            if isSet { selected = offered }
            if offered {
                var w = NBDWire.Writer()
                w.u32(Self.baseAllocationID)
                w.bytes += Array(NBD.baseAllocation.utf8)
                reply(NBD.Reply.metaContext, w.bytes)
            }
            reply(NBD.Reply.ack)
        case .info, .go:
            guard let request = try? NBDGoRequest(parsing: option.data) else {
                error(NBD.Reply.errInvalid, "a malformed INFO/GO request")
                return .negotiating
            }
            guard let index = export(named: request.exportName) else {
                error(NBD.Reply.errUnknown, "no export named \"\(request.exportName)\"")
                return .negotiating
            }
            let spec = exports[index]
            let info = NBDExportInfo(size: spec.size, transmissionFlags: spec.transmissionFlags, blockSize: Self.blockSize)
            reply(NBD.Reply.info, info.exportItem)
            if let item = info.blockSizeItem { reply(NBD.Reply.info, item) }
            if request.infoRequests.contains(NBD.Info.name) {
                var w = NBDWire.Writer()
                w.u16(NBD.Info.name)
                w.bytes += Array(spec.name.utf8)
                reply(NBD.Reply.info, w.bytes)
            }
            reply(NBD.Reply.ack)
            if option.code == NBD.Option.go.rawValue {
                return .transmission(NBDSessionAgreement(export: index, structuredReplies: structured, baseAllocation: selected, extendedHeaders: extended))
            }
        case .startTLS:
            if tls {
                error(NBD.Reply.errInvalid, "TLS is on already")
            } else {
                error(NBD.Reply.errPolicy, "this NBD server is not configured for TLS (ferry serve --tls-certificates DIR)")
            }
        case nil:
            error(NBD.Reply.errUnsupported, "option \(option.code) is not supported")
        }
        return .negotiating
    }

    /// FORCEDTLS before STARTTLS: only STARTTLS and ABORT are taken.
    private mutating func beforeTLS(_ option: NBDOption, _ out: inout ByteBuffer) -> Outcome {
        func reply(_ type: UInt32, _ text: String = "") { NBDOptionReply(option: option.code, type: type, data: Array(text.utf8)).write(to: &out) }
        switch NBD.Option(rawValue: option.code) {
        case .startTLS:
            guard option.data.isEmpty else {
                reply(NBD.Reply.errInvalid, "STARTTLS takes no data")
                return .negotiating
            }
            reply(NBD.Reply.ack)
            return .startTLS
        case .abort:
            reply(NBD.Reply.ack)
            return .close(reason: "the client aborted")
        case .exportName:
            return .close(reason: "EXPORT_NAME before STARTTLS: this server requires TLS")  // it cannot be refused
        default:
            reply(NBD.Reply.errTLSRequired, "this server requires TLS: send NBD_OPT_STARTTLS first (nbds:// URIs do)")
            return .negotiating
        }
    }
}
