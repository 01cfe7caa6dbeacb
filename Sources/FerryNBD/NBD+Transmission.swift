public import NIOCore

/// A request of the transmission phase (proto.md "Request message"), without its WRITE payload:
/// `u32 0x25609513, u16 command flags, u16 type, u64 cookie, u64 offset, u32 length` (28 bytes).
public struct NBDRequest: Sendable, Equatable {
    public static let headerSize = 28
    public var flags: UInt16
    public var type: UInt16
    public var cookie: UInt64
    public var offset: UInt64
    public var length: UInt32

    public init(flags: UInt16 = 0, type: UInt16, cookie: UInt64, offset: UInt64, length: UInt32) {
        self.flags = flags
        self.type = type
        self.cookie = cookie
        self.offset = offset
        self.length = length
    }

    public init(_ command: NBD.Command, flags: UInt16 = 0, cookie: UInt64, offset: UInt64 = 0, length: UInt32 = 0) {
        self.init(flags: flags, type: command.rawValue, cookie: cookie, offset: offset, length: length)
    }

    public var command: NBD.Command? { NBD.Command(rawValue: type) }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(NBD.requestMagic, endianness: .big)
        buffer.writeInteger(flags, endianness: .big)
        buffer.writeInteger(type, endianness: .big)
        buffer.writeInteger(cookie, endianness: .big)
        buffer.writeInteger(offset, endianness: .big)
        buffer.writeInteger(length, endianness: .big)
    }

    /// The request header at the front of `buffer`, or nil when incomplete; throws on a bad magic.
    public static func decode(from buffer: inout ByteBuffer) throws -> NBDRequest? {
        guard buffer.readableBytes >= headerSize else { return nil }
        let at = buffer.readerIndex
        guard buffer.getInteger(at: at, endianness: .big, as: UInt32.self) == NBD.requestMagic else {
            throw NBDWire.violation("request magic is wrong")
        }
        guard let flags = buffer.getInteger(at: at + 4, endianness: .big, as: UInt16.self),
            let type = buffer.getInteger(at: at + 6, endianness: .big, as: UInt16.self),
            let cookie = buffer.getInteger(at: at + 8, endianness: .big, as: UInt64.self),
            let offset = buffer.getInteger(at: at + 16, endianness: .big, as: UInt64.self),
            let length = buffer.getInteger(at: at + 24, endianness: .big, as: UInt32.self)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: headerSize)
        return NBDRequest(flags: flags, type: type, cookie: cookie, offset: offset, length: length)
    }
}

/// One `base:allocation` descriptor: a run's length and its HOLE/ZERO flags.
public struct NBDBlockDescriptor: Sendable, Equatable {
    public var length: UInt32
    public var flags: UInt32
    public init(length: UInt32, flags: UInt32) {
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

    func writeChunk(cookie: UInt64, done: Bool, to buffer: inout ByteBuffer) {
        Self.writeChunkHeader(cookie: cookie, done: done, type: type, length: length, to: &buffer)
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
                buffer.writeInteger(d.length, endianness: .big)
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
