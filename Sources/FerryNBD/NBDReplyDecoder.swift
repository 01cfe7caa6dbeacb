public import NIOCore

/// A request a client has sent and not yet seen the final reply of: what its replies may say.
public struct NBDPending: Sendable, Equatable {
    public var command: NBD.Command
    public var offset: UInt64
    public var length: UInt32

    public init(command: NBD.Command, offset: UInt64, length: UInt32) {
        self.command = command
        self.offset = offset
        self.length = length
    }

    var end: UInt64 { offset + UInt64(length) }
}

/// Cuts the server's byte stream of the transmission phase into replies, refusing whatever a
/// hostile server could use to make the client misbehave (proto.md "Transmission"):
/// a bad magic, a cookie no request carries, a chunk longer than its request could need
/// (`NBD.Limit`), data or holes outside the request's range, a chunk type the command cannot
/// have, block status that does not start at the request's offset or runs past the export's end,
/// zero-length descriptors, an error message longer than its chunk.
/// Whether chunks cover a READ exactly once is the client's check (it sees all of them).
public struct NBDReplyDecoder: Sendable {
    public var exportSize: UInt64

    public init(exportSize: UInt64) { self.exportSize = exportSize }

    /// The reply at the front of `buffer`, or nil (nothing consumed) when it is incomplete.
    public func next(from buffer: inout ByteBuffer, pending: (UInt64) -> NBDPending?) throws -> NBDReply? {
        let at = buffer.readerIndex
        guard let magic = buffer.getInteger(at: at, endianness: .big, as: UInt32.self) else { return nil }
        switch magic {
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
            let cap = type == NBD.Chunk.offsetData ? 8 + UInt64(request.length) : UInt64(NBD.Limit.metadataChunk)
            guard UInt64(length) <= cap else {
                throw NBDWire.violation("a \(length)-byte reply chunk (type \(type)) for a \(request.length)-byte \(request.command) (at most \(cap))")
            }
            guard buffer.readableBytes >= 20 + Int(length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 20)
            guard var body = buffer.readSlice(length: Int(length)) else { return nil }
            let payload = try parse(type: type, body: &body, request: request)
            let done = flags & NBD.Chunk.flagDone != 0
            if case .none = payload, !done { throw NBDWire.violation("a NONE chunk without the DONE flag") }
            return .chunk(cookie: cookie, done: done, payload: payload)
        default:
            throw NBDWire.violation("reply magic 0x\(String(magic, radix: 16)) is neither simple nor structured")
        }
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
        case NBD.Chunk.blockStatus:
            guard request.command == .blockStatus else { throw NBDWire.violation("block status in a reply to \(request.command)") }
            let context = try int(UInt32.self)
            guard body.readableBytes > 0, body.readableBytes % 8 == 0 else {
                throw NBDWire.violation("a block status chunk of \(length) bytes (4 + 8 per descriptor, at least one)")
            }
            var descriptors: [NBDBlockDescriptor] = []
            var end = request.offset
            while body.readableBytes > 0 {
                let d = NBDBlockDescriptor(length: UInt64(try int(UInt32.self)), flags: try int(UInt32.self))
                guard d.length > 0 else { throw NBDWire.violation("a zero-length block status descriptor") }
                end += d.length  // ≤ 2^63 + 2^17 · 2^32: no overflow
                guard end <= exportSize else {
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
