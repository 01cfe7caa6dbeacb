public import NIOCore

/// A request a client has sent and not yet seen the final reply of: what its replies may say.
public struct NBDPending: Sendable, Equatable {
    public var command: NBD.Command
    public var offset: UInt64
    /// The request's length (over 32 bits only with extended headers, never for a READ).
    public var length: UInt64

    public init(command: NBD.Command, offset: UInt64, length: UInt64) {
        self.command = command
        self.offset = offset
        self.length = length
    }

    var end: UInt64 { offset &+ length }  // the client checked offset + length ≤ the export's size
}

/// Cuts the server's byte stream of the transmission phase into replies, refusing whatever a
/// hostile server could use to make the client misbehave (proto.md "Transmission"):
/// a bad magic, a cookie no request carries, a chunk longer than its request could need
/// (`NBD.Limit`), data or holes outside the request's range, a chunk type the command cannot
/// have, block status that does not start at the request's offset or runs past the export's end,
/// zero-length descriptors, an error message longer than its chunk.
/// With extended headers only extended replies are valid (and only `BLOCK_STATUS_EXT` for block
/// status, whose offset must be the request's); without, none are.
/// Whether chunks cover a READ exactly once is the client's check (it sees all of them).
public struct NBDReplyDecoder: Sendable {
    public var exportSize: UInt64
    /// True when extended headers were agreed (`NBD_OPT_EXTENDED_HEADERS`).
    public var extended: Bool

    public init(exportSize: UInt64, extended: Bool = false) {
        self.exportSize = exportSize
        self.extended = extended
    }

    /// The reply at the front of `buffer`, or nil (nothing consumed) when it is incomplete.
    public func next(from buffer: inout ByteBuffer, pending: (UInt64) -> NBDPending?) throws -> NBDReply? {
        let at = buffer.readerIndex
        guard let magic = buffer.getInteger(at: at, endianness: .big, as: UInt32.self) else { return nil }
        if extended, magic != NBD.extendedReplyMagic {
            throw NBDWire.violation("reply magic 0x\(String(magic, radix: 16)) after extended headers were agreed (only 0x6e8a278c is valid)")
        }
        switch magic {
        case NBD.extendedReplyMagic:
            guard extended else { throw NBDWire.violation("an extended reply (0x6e8a278c), but extended headers were not agreed") }
            guard let flags = buffer.getInteger(at: at + 4, endianness: .big, as: UInt16.self),
                let type = buffer.getInteger(at: at + 6, endianness: .big, as: UInt16.self),
                let cookie = buffer.getInteger(at: at + 8, endianness: .big, as: UInt64.self),
                let offset = buffer.getInteger(at: at + 16, endianness: .big, as: UInt64.self),
                let length = buffer.getInteger(at: at + 24, endianness: .big, as: UInt64.self)
            else { return nil }
            guard let request = pending(cookie) else { throw unknown(cookie) }
            guard offset == request.offset else {
                throw NBDWire.violation("an extended reply for offset \(offset) to a request at \(request.offset)")
            }
            return try chunk(flags: flags, type: type, cookie: cookie, length: length, header: 32, request: request, from: &buffer)
        case NBD.simpleReplyMagic:
            guard let error = buffer.getInteger(at: at + 4, endianness: .big, as: UInt32.self),
                let cookie = buffer.getInteger(at: at + 8, endianness: .big, as: UInt64.self)
            else { return nil }
            guard let request = pending(cookie) else { throw unknown(cookie) }
            var dataLength = 0
            if request.command == .read, error == 0 { dataLength = Int(request.length) }
            guard buffer.readableBytes >= 16 + dataLength else { return nil }
            buffer.moveReaderIndex(forwardBy: 16)
            let data = dataLength > 0 || (request.command == .read && error == 0) ? buffer.readSlice(length: dataLength) : nil
            return .simple(cookie: cookie, error: error, data: data)
        case NBD.structuredReplyMagic:
            guard let flags = buffer.getInteger(at: at + 4, endianness: .big, as: UInt16.self),
                let type = buffer.getInteger(at: at + 6, endianness: .big, as: UInt16.self),
                let cookie = buffer.getInteger(at: at + 8, endianness: .big, as: UInt64.self),
                let length = buffer.getInteger(at: at + 16, endianness: .big, as: UInt32.self)
            else { return nil }
            guard let request = pending(cookie) else { throw unknown(cookie) }
            return try chunk(flags: flags, type: type, cookie: cookie, length: UInt64(length), header: 20, request: request, from: &buffer)
        default:
            throw NBDWire.violation("reply magic 0x\(String(magic, radix: 16)) is neither simple nor structured")
        }
    }

    /// A structured or extended chunk whose `header` bytes are read: its length bounded before
    /// its bytes are waited for, then its payload parsed.
    private func chunk(
        flags: UInt16, type: UInt16, cookie: UInt64, length: UInt64, header: Int, request: NBDPending, from buffer: inout ByteBuffer
    ) throws -> NBDReply? {
        let cap = type == NBD.Chunk.offsetData ? 8 + min(request.length, UInt64(NBD.Limit.payload)) : UInt64(NBD.Limit.metadataChunk)
        guard length <= cap else {
            throw NBDWire.violation("a \(length)-byte reply chunk (type \(type)) for a \(request.length)-byte \(request.command) (at most \(cap))")
        }
        guard buffer.readableBytes >= header + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: header)
        guard var body = buffer.readSlice(length: Int(length)) else { return nil }
        let payload = try parse(type: type, body: &body, request: request)
        let done = flags & NBD.Chunk.flagDone != 0
        if case .none = payload, !done { throw NBDWire.violation("a NONE chunk without the DONE flag") }
        return .chunk(cookie: cookie, done: done, payload: payload)
    }

    private func unknown(_ cookie: UInt64) -> NBDError {
        NBDWire.violation("a reply for cookie \(cookie), which no request in flight carries")
    }

    private func parse(type: UInt16, body: inout ByteBuffer, request: NBDPending) throws -> NBDChunkPayload {
        let length = body.readableBytes
        func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard let v = body.readInteger(endianness: .big, as: T.self) else {
                throw NBDWire.violation("reply chunk type \(type) is \(length) bytes, too short")
            }
            return v
        }
        func inside(_ offset: UInt64, _ count: UInt64, _ what: String) throws {
            guard request.command == .read else { throw NBDWire.violation("\(what) in a reply to \(request.command)") }
            let (end, overflow) = offset.addingReportingOverflow(count)
            guard count > 0, !overflow, offset >= request.offset, end <= request.end else {
                throw NBDWire.violation("\(what) \(offset)+\(count) lies outside the READ of \(request.offset)+\(request.length)")
            }
        }
        switch type {
        case NBD.Chunk.none:
            guard length == 0 else { throw NBDWire.violation("a NONE chunk of \(length) bytes") }
            return .none
        case NBD.Chunk.offsetData:
            let offset = try int(UInt64.self)
            try inside(offset, UInt64(body.readableBytes), "data chunk")
            return .data(offset: offset, bytes: body)
        case NBD.Chunk.offsetHole:
            let offset = try int(UInt64.self), count = try int(UInt32.self)
            guard body.readableBytes == 0 else { throw NBDWire.violation("a hole chunk of \(length) bytes") }
            try inside(offset, UInt64(count), "hole chunk")
            return .hole(offset: offset, length: count)
        case NBD.Chunk.blockStatus, NBD.Chunk.blockStatusExtended:
            guard request.command == .blockStatus else { throw NBDWire.violation("block status in a reply to \(request.command)") }
            let wide = type == NBD.Chunk.blockStatusExtended
            guard wide == extended else {
                throw NBDWire.violation(extended ? "a compact BLOCK_STATUS chunk after extended headers" : "BLOCK_STATUS_EXT without extended headers")
            }
            let context = try int(UInt32.self)
            let size = wide ? 16 : 8
            if wide {
                let count = try int(UInt32.self)
                guard body.readableBytes == Int(count) * size else {
                    throw NBDWire.violation("a BLOCK_STATUS_EXT chunk of \(length) bytes for \(count) descriptors (8 + 16 each)")
                }
            }
            guard body.readableBytes > 0, body.readableBytes % size == 0 else {
                throw NBDWire.violation("a block status chunk of \(length) bytes (\(wide ? 8 : 4) + \(size) per descriptor, at least one)")
            }
            var descriptors: [NBDBlockDescriptor] = []
            var end = request.offset
            while body.readableBytes > 0 {
                let length = wide ? try int(UInt64.self) : UInt64(try int(UInt32.self))
                let flags = wide ? try int(UInt64.self) : UInt64(try int(UInt32.self))
                guard flags <= UInt64(UInt32.max) else { throw NBDWire.violation("base:allocation status flags 0x\(String(flags, radix: 16)) over 32 bits") }
                let d = NBDBlockDescriptor(length: length, flags: UInt32(flags))
                guard d.length > 0 else { throw NBDWire.violation("a zero-length block status descriptor") }
                let (next, overflow) = end.addingReportingOverflow(d.length)
                end = next
                guard !overflow, end <= exportSize else {
                    throw NBDWire.violation("block status runs to \(end), past the end of the \(exportSize)-byte export")
                }
                descriptors.append(d)
            }
            return .blockStatus(context: context, descriptors: descriptors)
        case NBD.Chunk.error, NBD.Chunk.errorOffset:
            let errno = try int(UInt32.self), count = try int(UInt16.self)
            let extra = type == NBD.Chunk.errorOffset ? 8 : 0
            guard body.readableBytes == Int(count) + extra else {
                throw NBDWire.violation("an error chunk's \(count)-byte message does not fit its \(length) bytes")
            }
            let message = body.readString(length: Int(count)) ?? ""
            var offset: UInt64?
            if extra > 0 {
                let at = try int(UInt64.self)
                guard at >= request.offset, at < max(request.end, request.offset + 1) else {
                    throw NBDWire.violation("an error at offset \(at), outside the request \(request.offset)+\(request.length)")
                }
                offset = at
            }
            guard errno != 0 else { throw NBDWire.violation("an error chunk with error 0") }
            return .error(errno: errno, message: message, offset: offset)
        default:
            throw NBDWire.violation("unknown reply chunk type \(type)")
        }
    }
}
