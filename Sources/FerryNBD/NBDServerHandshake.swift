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
    }

    enum State: Sendable { case clientFlags, options, finished }

    public let exports: [NBDExportSpec]
    private var state = State.clientFlags
    private var noZeroes = false
    private var structured = false
    private var extended = false
    private var selected = false
    private var options = 0

    public init(exports: [NBDExportSpec]) { self.exports = exports }

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
            error(NBD.Reply.errPolicy, "ferry's NBD server does not speak TLS")
        case nil:
            error(NBD.Reply.errUnsupported, "option \(option.code) is not supported")
        }
        return .negotiating
    }
}
