public import NIOCore

/// A request of the transmission phase (proto.md "Request message"), without its WRITE payload:
/// `u32 0x25609513, u16 command flags, u16 type, u64 cookie, u64 offset, u32 length` (28 bytes),
/// or with extended headers `u32 0x21e41c71, …, u64 length` (32 bytes).
public struct NBDRequest: Sendable, Equatable {
    public static let headerSize = 28
    public static let extendedHeaderSize = 32
    public var flags: UInt16
    public var type: UInt16
    public var cookie: UInt64
    public var offset: UInt64
    /// The payload length of a WRITE, else the length of export the request works on (64 bits
    /// only with extended headers).
    public var length: UInt64

    public init(flags: UInt16 = 0, type: UInt16, cookie: UInt64, offset: UInt64, length: UInt64) {
        self.flags = flags
        self.type = type
        self.cookie = cookie
        self.offset = offset
        self.length = length
    }

    public init(_ command: NBD.Command, flags: UInt16 = 0, cookie: UInt64, offset: UInt64 = 0, length: UInt32 = 0) {
        self.init(flags: flags, type: command.rawValue, cookie: cookie, offset: offset, length: UInt64(length))
    }

    /// The payload bytes that follow the header: a WRITE's, or with extended headers whatever
    /// `NBD_CMD_FLAG_PAYLOAD_LEN` announces.
    public func payloadLength(extended: Bool) -> UInt64 {
        if extended { return flags & NBD.CommandFlag.payloadLength != 0 ? length : 0 }
        return command == .write ? length : 0
    }

    public var command: NBD.Command? { NBD.Command(rawValue: type) }

    /// Writes the header: compact (a length over 32 bits is cut, the caller splits) or extended
    /// (a WRITE then carries `NBD_CMD_FLAG_PAYLOAD_LEN`).
    public func write(to buffer: inout ByteBuffer, extended: Bool = false) {
        buffer.writeInteger(extended ? NBD.extendedRequestMagic : NBD.requestMagic, endianness: .big)
        buffer.writeInteger(extended && command == .write ? flags | NBD.CommandFlag.payloadLength : flags, endianness: .big)
        buffer.writeInteger(type, endianness: .big)
        buffer.writeInteger(cookie, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        if extended { buffer.writeInteger(length, endianness: .big) } else { buffer.writeInteger(UInt32(truncatingIfNeeded: length), endianness: .big) }
    }

    /// The request header at the front of `buffer`, or nil when incomplete; throws on a magic
    /// that is not the one of the agreed mode (compact, or `extended` headers) and on an extended
    /// WRITE without `NBD_CMD_FLAG_PAYLOAD_LEN`.
    public static func decode(from buffer: inout ByteBuffer, extended: Bool = false) throws -> NBDRequest? {
        let size = extended ? extendedHeaderSize : headerSize
        let at = buffer.readerIndex
        // The magic is checked as soon as it is there: a compact header in extended mode is
        // shorter than the 32 bytes waited for, and must not leave the server waiting.
        guard let magic = buffer.getInteger(at: at, endianness: .big, as: UInt32.self) else { return nil }
        guard magic == (extended ? NBD.extendedRequestMagic : NBD.requestMagic) else {
            let mode = extended ? "extended headers were agreed" : "compact headers were agreed"
            throw NBDWire.violation("request magic 0x\(String(magic, radix: 16)) is wrong (\(mode))")
        }
        guard buffer.readableBytes >= size else { return nil }
        guard let flags = buffer.getInteger(at: at + 4, endianness: .big, as: UInt16.self),
            let type = buffer.getInteger(at: at + 6, endianness: .big, as: UInt16.self),
            let cookie = buffer.getInteger(at: at + 8, endianness: .big, as: UInt64.self),
            let offset = buffer.getInteger(at: at + 16, endianness: .big, as: UInt64.self)
        else { return nil }
        let length: UInt64
        if extended {
            guard let l = buffer.getInteger(at: at + 24, endianness: .big, as: UInt64.self) else { return nil }
            length = l
            if type == NBD.Command.write.rawValue, flags & NBD.CommandFlag.payloadLength == 0 {
                throw NBDWire.violation("an extended WRITE without NBD_CMD_FLAG_PAYLOAD_LEN: its payload cannot be found")
            }
        } else {
            guard let l = buffer.getInteger(at: at + 24, endianness: .big, as: UInt32.self) else { return nil }
            length = UInt64(l)
        }
        buffer.moveReaderIndex(forwardBy: size)
        return NBDRequest(flags: flags, type: type, cookie: cookie, offset: offset, length: length)
    }
}

/// One `base:allocation` descriptor: a run's length (over 32 bits only in BLOCK_STATUS_EXT) and
/// its HOLE/ZERO flags.
public struct NBDBlockDescriptor: Sendable, Equatable {
    public var length: UInt64
    public var flags: UInt32
    public init(length: UInt64, flags: UInt32) {
        self.length = length
        self.flags = flags
    }
}

/// A reply of the transmission phase, as the client's decoder yields it.
public enum NBDReply: Sendable, Equatable {
    /// `u32 0x67446698, u32 error, u64 cookie` and, for a successful READ, its data.
    case simple(cookie: UInt64, error: UInt32, data: ByteBuffer?)
    /// One structured reply chunk.
    case chunk(cookie: UInt64, done: Bool, payload: NBDChunkPayload)

    public var cookie: UInt64 {
        switch self {
        case .simple(let cookie, _, _), .chunk(let cookie, _, _): return cookie
        }
    }

    /// True when no more replies for the cookie follow.
    public var isFinal: Bool {
        switch self {
        case .simple: return true
        case .chunk(_, let done, _): return done
        }
    }

    /// Writes the reply with extended headers (`NBD_EXTENDED_REPLY_MAGIC`, the request's
    /// `offset`): a simple reply becomes a NONE chunk (success) or an ERROR chunk, as extended
    /// headers allow no simple replies.
    public func writeExtended(offset: UInt64, to buffer: inout ByteBuffer) {
        switch self {
        case .simple(let cookie, let error, let data):
            if error != 0 {
                NBDChunkPayload.error(errno: error, message: "", offset: nil).writeExtendedChunk(cookie: cookie, done: true, offset: offset, to: &buffer)
            } else if let data {
                NBDChunkPayload.data(offset: offset, bytes: data).writeExtendedChunk(cookie: cookie, done: true, offset: offset, to: &buffer)
            } else {
                NBDChunkPayload.none.writeExtendedChunk(cookie: cookie, done: true, offset: offset, to: &buffer)
            }
        case .chunk(let cookie, let done, let payload):
            payload.writeExtendedChunk(cookie: cookie, done: done, offset: offset, to: &buffer)
        }
    }

    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .simple(let cookie, let error, let data):
            buffer.writeInteger(NBD.simpleReplyMagic, endianness: .big)
            buffer.writeInteger(error, endianness: .big)
            buffer.writeInteger(cookie, endianness: .big)
            if var data { buffer.writeBuffer(&data) }
        case .chunk(let cookie, let done, let payload):
            payload.writeChunk(cookie: cookie, done: done, to: &buffer)
        }
    }
}

/// The payload of a structured reply chunk (proto.md "Structured reply chunk message").
public enum NBDChunkPayload: Sendable, Equatable {
    case none
    case data(offset: UInt64, bytes: ByteBuffer)
    case hole(offset: UInt64, length: UInt32)
    case blockStatus(context: UInt32, descriptors: [NBDBlockDescriptor])
    /// `NBD_REPLY_TYPE_ERROR` (offset nil) or `ERROR_OFFSET`.
    case error(errno: UInt32, message: String, offset: UInt64?)

    var type: UInt16 {
        switch self {
        case .none: return NBD.Chunk.none
        case .data: return NBD.Chunk.offsetData
        case .hole: return NBD.Chunk.offsetHole
        case .blockStatus: return NBD.Chunk.blockStatus
        case .error(_, _, let offset): return offset == nil ? NBD.Chunk.error : NBD.Chunk.errorOffset
        }
    }

    var length: Int {
        switch self {
        case .none: return 0
        case .data(_, let bytes): return 8 + bytes.readableBytes
        case .hole: return 12
        case .blockStatus(_, let descriptors): return 4 + 8 * descriptors.count
        case .error(_, let message, let offset): return 6 + message.utf8.count + (offset == nil ? 0 : 8)
        }
    }

    /// The 20-byte header of a structured reply chunk whose payload of `length` bytes follows.
    static func writeChunkHeader(cookie: UInt64, done: Bool, type: UInt16, length: Int, to buffer: inout ByteBuffer) {
        buffer.writeInteger(NBD.structuredReplyMagic, endianness: .big)
        buffer.writeInteger(done ? NBD.Chunk.flagDone : 0, endianness: .big)
        buffer.writeInteger(type, endianness: .big)
        buffer.writeInteger(cookie, endianness: .big)
        buffer.writeInteger(UInt32(length), endianness: .big)
    }

    /// The 32-byte header of an extended reply chunk (`offset` is the request's).
    static func writeExtendedChunkHeader(cookie: UInt64, done: Bool, type: UInt16, offset: UInt64, length: Int, to buffer: inout ByteBuffer) {
        buffer.writeInteger(NBD.extendedReplyMagic, endianness: .big)
        buffer.writeInteger(done ? NBD.Chunk.flagDone : 0, endianness: .big)
        buffer.writeInteger(type, endianness: .big)
        buffer.writeInteger(cookie, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(UInt64(length), endianness: .big)
    }

    /// This payload in an extended reply chunk; block status goes out as BLOCK_STATUS_EXT.
    func writeExtendedChunk(cookie: UInt64, done: Bool, offset: UInt64, to buffer: inout ByteBuffer) {
        guard case .blockStatus(let context, let descriptors) = self else {
            Self.writeExtendedChunkHeader(cookie: cookie, done: done, type: type, offset: offset, length: length, to: &buffer)
            return writeBody(to: &buffer)
        }
        Self.writeExtendedChunkHeader(
            cookie: cookie, done: done, type: NBD.Chunk.blockStatusExtended, offset: offset, length: 8 + 16 * descriptors.count, to: &buffer)
        buffer.writeInteger(context, endianness: .big)
        buffer.writeInteger(UInt32(descriptors.count), endianness: .big)
        for d in descriptors {
            buffer.writeInteger(UInt64(d.length), endianness: .big)
            buffer.writeInteger(UInt64(d.flags), endianness: .big)
        }
    }

    func writeChunk(cookie: UInt64, done: Bool, to buffer: inout ByteBuffer) {
        Self.writeChunkHeader(cookie: cookie, done: done, type: type, length: length, to: &buffer)
        writeBody(to: &buffer)
    }

    private func writeBody(to buffer: inout ByteBuffer) {
        switch self {
        case .none: break
        case .data(let offset, var bytes):
            buffer.writeInteger(offset, endianness: .big)
            buffer.writeBuffer(&bytes)
        case .hole(let offset, let length):
            buffer.writeInteger(offset, endianness: .big)
            buffer.writeInteger(length, endianness: .big)
        case .blockStatus(let context, let descriptors):
            buffer.writeInteger(context, endianness: .big)
            for d in descriptors {
                buffer.writeInteger(UInt32(truncatingIfNeeded: d.length), endianness: .big)
                buffer.writeInteger(d.flags, endianness: .big)
            }
        case .error(let errno, let message, let offset):
            buffer.writeInteger(errno, endianness: .big)
            buffer.writeInteger(UInt16(message.utf8.count), endianness: .big)
            buffer.writeString(message)
            if let offset { buffer.writeInteger(offset, endianness: .big) }
        }
    }
}
