public import NIOCore

/// A client's option during negotiation (proto.md "Option haggling"):
/// `u64 IHAVEOPT, u32 option, u32 length, data`.
public struct NBDOption: Sendable, Equatable {
    public var code: UInt32
    public var data: [UInt8]

    public init(code: UInt32, data: [UInt8] = []) {
        self.code = code
        self.data = data
    }

    public init(_ option: NBD.Option, data: [UInt8] = []) { self.init(code: option.rawValue, data: data) }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(NBD.optionMagic, endianness: .big)
        buffer.writeInteger(code, endianness: .big)
        buffer.writeInteger(UInt32(data.count), endianness: .big)
        buffer.writeBytes(data)
    }

    /// The option at the front of `buffer`, or nil (nothing consumed) when it is not all there yet.
    /// Throws on a bad magic or a length over `NBD.Limit.optionLength`.
    public static func decode(from buffer: inout ByteBuffer) throws -> NBDOption? {
        guard let magic = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt64.self),
            let code = buffer.getInteger(at: buffer.readerIndex + 8, endianness: .big, as: UInt32.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 12, endianness: .big, as: UInt32.self)
        else { return nil }
        guard magic == NBD.optionMagic else { throw NBDWire.violation("option magic 0x\(String(magic, radix: 16)) is not IHAVEOPT") }
        guard length <= NBD.Limit.optionLength else {
            throw NBDWire.violation("option \(code) claims \(length) bytes (at most \(NBD.Limit.optionLength))")
        }
        guard buffer.readableBytes >= 16 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 16)
        let data = buffer.readBytes(length: Int(length)) ?? []
        return NBDOption(code: code, data: data)
    }
}

/// A server's reply to an option: `u64 0x3e889045565a9, u32 option, u32 type, u32 length, data`.
public struct NBDOptionReply: Sendable, Equatable {
    public var option: UInt32
    public var type: UInt32
    public var data: [UInt8]

    public init(option: UInt32, type: UInt32, data: [UInt8] = []) {
        self.option = option
        self.type = type
        self.data = data
    }

    public var isError: Bool { type & NBD.Reply.errorBit != 0 }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(NBD.optionReplyMagic, endianness: .big)
        buffer.writeInteger(option, endianness: .big)
        buffer.writeInteger(type, endianness: .big)
        buffer.writeInteger(UInt32(data.count), endianness: .big)
        buffer.writeBytes(data)
    }

    /// The reply at the front of `buffer`, or nil when incomplete. Throws on a bad magic or a
    /// length over `NBD.Limit.optionLength`.
    public static func decode(from buffer: inout ByteBuffer) throws -> NBDOptionReply? {
        let at = buffer.readerIndex
        guard let magic = buffer.getInteger(at: at, endianness: .big, as: UInt64.self),
            let option = buffer.getInteger(at: at + 8, endianness: .big, as: UInt32.self),
            let type = buffer.getInteger(at: at + 12, endianness: .big, as: UInt32.self),
            let length = buffer.getInteger(at: at + 16, endianness: .big, as: UInt32.self)
        else { return nil }
        guard magic == NBD.optionReplyMagic else {
            throw NBDWire.violation("option reply magic 0x\(String(magic, radix: 16)) is wrong")
        }
        guard length <= NBD.Limit.optionLength else {
            throw NBDWire.violation("option reply of type 0x\(String(type, radix: 16)) claims \(length) bytes")
        }
        guard buffer.readableBytes >= 20 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 20)
        return NBDOptionReply(option: option, type: type, data: buffer.readBytes(length: Int(length)) ?? [])
    }
}

/// The data of `NBD_OPT_GO`/`NBD_OPT_INFO`: `u32 name length, name, u16 count, u16 info requests`.
public struct NBDGoRequest: Sendable, Equatable {
    public var exportName: String
    public var infoRequests: [UInt16]

    public init(exportName: String, infoRequests: [UInt16] = [NBD.Info.blockSize]) {
        self.exportName = exportName
        self.infoRequests = infoRequests
    }

    public var bytes: [UInt8] {
        var w = NBDWire.Writer()
        w.string32(exportName)
        w.u16(UInt16(infoRequests.count))
        for request in infoRequests { w.u16(request) }
        return w.bytes
    }

    public init(parsing data: [UInt8]) throws {
        var r = NBDWire.Reader(data, what: "NBD_OPT_GO")
        exportName = try r.string32()
        let count = try r.u16()
        infoRequests = try (0..<count).map { _ in try r.u16() }
        try r.end()
    }
}

/// The data of `NBD_OPT_SET_META_CONTEXT`/`LIST_META_CONTEXT`:
/// `u32 name length, name, u32 query count, {u32 length, query}…`.
public struct NBDMetaContextRequest: Sendable, Equatable {
    public var exportName: String
    public var queries: [String]

    public init(exportName: String, queries: [String]) {
        self.exportName = exportName
        self.queries = queries
    }

    public var bytes: [UInt8] {
        var w = NBDWire.Writer()
        w.string32(exportName)
        w.u32(UInt32(queries.count))
        for query in queries { w.string32(query) }
        return w.bytes
    }

    public init(parsing data: [UInt8]) throws {
        var r = NBDWire.Reader(data, what: "meta context request")
        exportName = try r.string32()
        let count = try r.u32()
        var queries: [String] = []
        for _ in 0..<count { queries.append(try r.string32()) }  // each takes ≥ 4 bytes: bounded by the data
        self.queries = queries
        try r.end()
    }
}

/// `NBD_INFO_BLOCK_SIZE`: the sizes a client's requests should respect.
public struct NBDBlockSize: Sendable, Equatable {
    public var minimum: UInt32
    public var preferred: UInt32
    public var maximum: UInt32

    public init(minimum: UInt32, preferred: UInt32, maximum: UInt32) {
        self.minimum = minimum
        self.preferred = preferred
        self.maximum = maximum
    }
}

/// What `NBD_REP_INFO`s told a client about an export.
public struct NBDExportInfo: Sendable, Equatable {
    /// Size and transmission flags (`NBD_INFO_EXPORT`, mandatory before the ACK of GO).
    public var size: UInt64?
    public var transmissionFlags: UInt16
    public var blockSize: NBDBlockSize?

    public init(size: UInt64? = nil, transmissionFlags: UInt16 = 0, blockSize: NBDBlockSize? = nil) {
        self.size = size
        self.transmissionFlags = transmissionFlags
        self.blockSize = blockSize
    }

    public func has(_ flag: UInt16) -> Bool { transmissionFlags & flag != 0 }

    /// `NBD_REP_INFO` data of `NBD_INFO_EXPORT`.
    public var exportItem: [UInt8] {
        var w = NBDWire.Writer()
        w.u16(NBD.Info.export)
        w.u64(size ?? 0)
        w.u16(transmissionFlags)
        return w.bytes
    }

    /// `NBD_REP_INFO` data of `NBD_INFO_BLOCK_SIZE`, when known.
    public var blockSizeItem: [UInt8]? {
        guard let blockSize else { return nil }
        var w = NBDWire.Writer()
        w.u16(NBD.Info.blockSize)
        w.u32(blockSize.minimum)
        w.u32(blockSize.preferred)
        w.u32(blockSize.maximum)
        return w.bytes
    }

    /// Takes one `NBD_REP_INFO` item. Unknown items are ignored, as the spec asks; malformed
    /// known ones throw.
    public mutating func apply(item data: [UInt8]) throws {
        var r = NBDWire.Reader(data, what: "NBD_REP_INFO")
        switch try r.u16() {
        case NBD.Info.export:
            let size = try r.u64()
            let flags = try r.u16()
            try r.end()
            guard size <= UInt64(Int64.max) else { throw NBDWire.violation("export size \(size) is over 2^63") }
            self.size = size
            transmissionFlags = flags
        case NBD.Info.blockSize:
            let minimum = try r.u32(), preferred = try r.u32(), maximum = try r.u32()
            try r.end()
            // proto.md: minimum a power of 2 ≤ 64 KiB, maximum ≥ minimum. Preferred is advice only.
            guard minimum.nonzeroBitCount == 1, minimum <= 65536, maximum >= minimum else {
                throw NBDWire.violation("block sizes \(minimum)/\(preferred)/\(maximum) are inconsistent")
            }
            blockSize = NBDBlockSize(minimum: minimum, preferred: preferred, maximum: maximum)
        default:
            break
        }
    }
}
