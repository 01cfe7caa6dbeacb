public import NIOCore

/// Limits every decoder enforces before it allocates or trusts a length.
public enum WireLimits {
    /// Payload bytes in one data or compressed extent.
    public static let maxExtentData = 4 << 20
    /// The digest block: extents start on it and carry one 32-byte hash per block.
    public static let blockSize = 64 * 1024
    public static let hashSize = 32
    /// Hashes in one extent: one per block of the largest extent.
    public static let maxHashes = maxExtentData / blockSize
    /// A whole frame (type byte + payload): the largest extent plus its hashes and header.
    public static let maxFrame = maxExtentData + maxHashes * hashSize + 1024
    /// Strings (disk names, error messages, software names).
    public static let maxString = 4096
    /// Disks in one session.
    public static let maxDisks = 64
}

/// Every message of protocol version 1, as framed on the wire (docs/protocol.md):
///
/// ```
///  0        4      5
///  | length | type | payload (length - 1 bytes) ...
///    u32 BE   u8
/// ```
/// `length` counts the type byte and the payload and is at most `WireLimits.maxFrame`.
public enum Message: Sendable, Equatable {
    case hello(Hello)
    case disk(DiskDescription)
    case ready(DiskReady)
    case data(DataExtent)
    case zero(ZeroExtent)
    case compressed(CompressedExtent)
    case ack(Ack)
    case finish(Finish)
    case result(DiskResult)
    case error(ErrorMessage)
    case segments(SegmentList)
    case same(SameSegment)
    /// Delta sync's fine pass (Message+Delta.swift).
    case blockRequest(BlockRequest)
    case blockHashes(BlockHashList)
    case sameBlocks(SameBlocks)
    /// Either side, every few seconds: "still here". No payload. Lets the other side
    /// tell a silent dead link from a slow one (see `TransferChannel.idleTimeout`).
    case ping

    /// The type byte. 0x50–0x5F carry block-hash exchange: resume and delta sync's coarse
    /// pass use 0x50/0x51, delta sync's fine pass 0x52–0x54; the rest is reserved.
    public enum Kind: UInt8, Sendable {
        case hello = 0x01
        case disk = 0x02
        case ready = 0x03
        case data = 0x10
        case zero = 0x11
        case compressed = 0x12
        case ack = 0x20
        case ping = 0x21
        case finish = 0x30
        case result = 0x31
        case error = 0x40
        case segments = 0x50
        case same = 0x51
        case blockRequest = 0x52
        case blockHashes = 0x53
        case sameBlocks = 0x54
    }

    public var kind: Kind {
        switch self {
        case .hello: .hello
        case .disk: .disk
        case .ready: .ready
        case .data: .data
        case .zero: .zero
        case .compressed: .compressed
        case .ack: .ack
        case .finish: .finish
        case .result: .result
        case .error: .error
        case .segments: .segments
        case .same: .same
        case .blockRequest: .blockRequest
        case .blockHashes: .blockHashes
        case .sameBlocks: .sameBlocks
        case .ping: .ping
        }
    }

    /// Decodes one frame's payload (the bytes after the type byte). The whole payload
    /// must be consumed: trailing bytes are a violation.
    public init(kind rawKind: UInt8, payload: inout ByteBuffer) throws(ProtocolError) {
        guard let kind = Kind(rawValue: rawKind) else {
            throw ProtocolError(.protocolViolation, "unknown message type 0x\(String(rawKind, radix: 16))")
        }
        switch kind {
        case .hello: self = .hello(try Hello(parsing: &payload))
        case .disk: self = .disk(try DiskDescription(parsing: &payload))
        case .ready: self = .ready(try DiskReady(parsing: &payload))
        case .data: self = .data(try DataExtent(parsing: &payload))
        case .zero: self = .zero(try ZeroExtent(parsing: &payload))
        case .compressed: self = .compressed(try CompressedExtent(parsing: &payload))
        case .ack: self = .ack(try Ack(parsing: &payload))
        case .finish: self = .finish(try Finish(parsing: &payload))
        case .result: self = .result(try DiskResult(parsing: &payload))
        case .error: self = .error(try ErrorMessage(parsing: &payload))
        case .segments: self = .segments(try SegmentList(parsing: &payload))
        case .same: self = .same(try SameSegment(parsing: &payload))
        case .blockRequest: self = .blockRequest(try BlockRequest(parsing: &payload))
        case .blockHashes: self = .blockHashes(try BlockHashList(parsing: &payload))
        case .sameBlocks: self = .sameBlocks(try SameBlocks(parsing: &payload))
        case .ping: self = .ping
        }
        guard payload.readableBytes == 0 else {
            throw ProtocolError(.protocolViolation, "\(kind) message has \(payload.readableBytes) trailing bytes")
        }
    }

    /// Writes the frame except its bulk bytes (the data of a data or compressed extent),
    /// which it returns to be written right after — unchanged, so the sender's 1 MiB
    /// buffers go to the socket without being copied into the frame. The length field
    /// counts them. Nil when the frame was written whole.
    public func writeFrame(into buffer: inout ByteBuffer) -> ByteBuffer? {
        let bulk: ByteBuffer
        switch self {
        case .data(let m):
            var head = m
            bulk = m.data
            head.data = ByteBuffer()
            Message.data(head).write(to: &buffer)
        case .compressed(let m):
            var head = m
            bulk = m.compressed
            head.compressed = ByteBuffer()
            Message.compressed(head).write(to: &buffer)
        default:
            write(to: &buffer)
            return nil
        }
        // Patch the lengths written for an empty payload: the frame length, and the
        // extent's own length field(s), which the bulk bytes follow.
        let frameStart = buffer.writerIndex - frameBytesWithoutBulk
        let total = buffer.writerIndex - frameStart - 4 + bulk.readableBytes
        buffer.setInteger(UInt32(truncatingIfNeeded: total), at: frameStart, endianness: .big)
        switch self {
        case .data:
            // type(1) disk(4) offset(8) → length
            buffer.setInteger(UInt32(truncatingIfNeeded: bulk.readableBytes), at: frameStart + 4 + 1 + 12, endianness: .big)
        case .compressed:
            // type(1) disk(4) offset(8) length(4) codec(1) → compressed length
            buffer.setInteger(UInt32(truncatingIfNeeded: bulk.readableBytes), at: frameStart + 4 + 1 + 17, endianness: .big)
        default:
            break
        }
        return bulk
    }

    /// The encoded size of a data/compressed frame with its bulk bytes left out.
    private var frameBytesWithoutBulk: Int {
        switch self {
        case .data(let m): 4 + 1 + 16 + m.hashes.readableBytes
        case .compressed(let m): 4 + 1 + 21 + m.hashes.readableBytes
        default: 0
        }
    }

    /// Writes the whole frame: length, type, payload.
    public func write(to buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0), endianness: .big)
        buffer.writeInteger(kind.rawValue)
        switch self {
        case .hello(let m): m.write(to: &buffer)
        case .disk(let m): m.write(to: &buffer)
        case .ready(let m): m.write(to: &buffer)
        case .data(let m): m.write(to: &buffer)
        case .zero(let m): m.write(to: &buffer)
        case .compressed(let m): m.write(to: &buffer)
        case .ack(let m): m.write(to: &buffer)
        case .finish(let m): m.write(to: &buffer)
        case .result(let m): m.write(to: &buffer)
        case .error(let m): m.write(to: &buffer)
        case .segments(let m): m.write(to: &buffer)
        case .same(let m): m.write(to: &buffer)
        case .blockRequest(let m): m.write(to: &buffer)
        case .blockHashes(let m): m.write(to: &buffer)
        case .sameBlocks(let m): m.write(to: &buffer)
        case .ping: break
        }
        let length = buffer.writerIndex - lengthIndex - 4
        buffer.setInteger(UInt32(truncatingIfNeeded: length), at: lengthIndex, endianness: .big)
    }
}

/// Field readers that turn a short buffer into a `ProtocolError` naming the field.
extension ByteBuffer {
    @inlinable
    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(ProtocolError) -> T {
        guard let value = readInteger(endianness: .big, as: T.self) else {
            throw ProtocolError(.protocolViolation, "message ends inside field '\(field)'")
        }
        return value
    }

    mutating func readWireString(_ field: String) throws(ProtocolError) -> String {
        let count = Int(try read(UInt16.self, field))
        guard count <= WireLimits.maxString else {
            throw ProtocolError(.protocolViolation, "field '\(field)' is \(count) bytes, over the \(WireLimits.maxString)-byte limit")
        }
        guard let bytes = readBytes(length: count) else {
            throw ProtocolError(.protocolViolation, "message ends inside field '\(field)'")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func readSlice(_ count: Int, _ field: String) throws(ProtocolError) -> ByteBuffer {
        guard count >= 0, let slice = readSlice(length: count) else {
            throw ProtocolError(.protocolViolation, "message ends inside field '\(field)' (\(count) bytes expected)")
        }
        return slice
    }

    mutating func writeWireString(_ string: String) {
        // Truncate on a byte count (a name longer than the limit is cut, never refused on write).
        let bytes = Array(string.utf8.prefix(WireLimits.maxString))
        writeInteger(UInt16(bytes.count), endianness: .big)
        writeBytes(bytes)
    }
}
