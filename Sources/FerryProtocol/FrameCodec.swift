public import NIOCore

/// Splits the byte stream into frames and decodes each into a `Message`.
///
/// The length prefix is checked against `WireLimits.maxFrame` before any payload is
/// awaited, so a hostile peer announcing a 4 GiB frame is refused at once instead
/// of making us buffer it.
public struct MessageDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = Message

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try Self.next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            throw ProtocolError(.protocolViolation, "the connection closed in the middle of a message")
        }
        return .needMoreData
    }

    /// The size of the frame at the front of `buffer`, length prefix included, once
    /// the prefix is readable; a prefix over `WireLimits.maxFrame` (or of an empty
    /// frame) is refused before any of the payload is awaited.
    public static func frameSize(at buffer: ByteBuffer) throws(ProtocolError) -> Int? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard length >= 1 else {
            throw ProtocolError(.protocolViolation, "empty frame")
        }
        guard length <= WireLimits.maxFrame else {
            throw ProtocolError(.oversizeFrame, "frame of \(length) bytes is over the \(WireLimits.maxFrame)-byte limit")
        }
        return 4 + Int(length)
    }

    /// Takes one whole frame off the front of `buffer`, or nil if it is not all there yet.
    public static func next(from buffer: inout ByteBuffer) throws(ProtocolError) -> Message? {
        guard let size = try frameSize(at: buffer), buffer.readableBytes >= size else { return nil }
        let length = size - 4
        buffer.moveReaderIndex(forwardBy: 4)
        guard let kind = buffer.readInteger(as: UInt8.self), var payload = buffer.readSlice(length: Int(length) - 1) else {
            return nil  // unreachable: the length check above guarantees the bytes
        }
        return try Message(kind: kind, payload: &payload)
    }
}

/// Frames outgoing messages.
public struct MessageEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = Message

    public init() {}

    public func encode(data: Message, out: inout ByteBuffer) throws {
        data.write(to: &out)
    }
}

/// Frames outgoing messages without copying bulk data: the header (with hashes) goes
/// in a small buffer and the extent's bytes follow as their own write. Used on the
/// real channels; `MessageEncoder` is the simple form.
public final class MessageFrameWriter: ChannelOutboundHandler, Sendable {
    public typealias OutboundIn = Message
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = Self.unwrapOutboundIn(data)
        var header = context.channel.allocator.buffer(capacity: 4096)
        if let bulk = message.writeFrame(into: &header) {
            context.write(Self.wrapOutboundOut(header), promise: nil)
            context.write(Self.wrapOutboundOut(bulk), promise: promise)
        } else {
            context.write(Self.wrapOutboundOut(header), promise: promise)
        }
    }
}
