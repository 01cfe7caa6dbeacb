import FerryProtocol
import FerryTestSupport
import NIOCore
import NIOEmbedded
import Testing

/// The channel's frame reader: however the stream is cut into reads — inside a
/// length prefix, inside a header, inside the bulk data, one byte at a time — it
/// yields exactly the messages sent, and it refuses what `MessageDecoder` refuses.
@Suite struct MessageFrameReaderTests {
    /// Every sample message, twice, as one byte stream.
    static func stream() -> ByteBuffer {
        var buffer = ByteBuffer()
        for message in MessageCodecTests.samples + MessageCodecTests.samples { message.write(to: &buffer) }
        return buffer
    }

    /// Feeds `stream` cut at `cuts` (sorted offsets) and returns what came out.
    static func decode(_ stream: ByteBuffer, cuts: [Int]) throws -> [Message] {
        let channel = EmbeddedChannel(handler: MessageFrameReader())
        var start = 0
        for cut in cuts + [stream.readableBytes] where cut > start {
            if let piece = stream.getSlice(at: start, length: cut - start) { try channel.writeInbound(piece) }
            start = cut
        }
        var out: [Message] = []
        while let message = try channel.readInbound(as: Message.self) { out.append(message) }
        _ = try channel.finish()
        return out
    }

    @Test func randomCutsYieldTheSameMessages() throws {
        let stream = Self.stream()
        let expected = MessageCodecTests.samples + MessageCodecTests.samples
        let seed = UInt64.random(in: 0...UInt64.max)
        print("seed \(seed)")
        var rng = SeededRandom(seed: seed)
        for round in 0..<200 {
            // Few large reads in some rounds, many tiny ones in others.
            let count = round % 4 == 0 ? Int(rng.next() % 400) + 100 : Int(rng.next() % 12) + 1
            let cuts = (0..<count).map { _ in Int(rng.next() % UInt64(stream.readableBytes)) }.sorted()
            #expect(try Self.decode(stream, cuts: cuts) == expected, "cuts \(cuts)")
        }
    }

    @Test func byteByByteAndWhole() throws {
        let stream = Self.stream()
        let expected = MessageCodecTests.samples + MessageCodecTests.samples
        #expect(try Self.decode(stream, cuts: []) == expected)
        #expect(try Self.decode(stream, cuts: Array(1..<stream.readableBytes)) == expected)
    }

    @Test func oversizeFrameIsRefusedEvenWhenItsPrefixIsCut() throws {
        var stream = ByteBuffer()
        Message.ping.write(to: &stream)
        stream.writeInteger(UInt32(WireLimits.maxFrame + 1), endianness: .big)
        stream.writeBytes([0x10, 1, 2, 3])
        for cut in [0, 5, 6, 7, 8] {
            #expect(throws: ProtocolError.self) { _ = try Self.decode(stream, cuts: [cut]) }
        }
    }

    /// A close inside a frame is a cut connection, which the end of the stream reports
    /// (a network failure, resumable), not a framing error: the cut frame is dropped and
    /// no error is raised here (a receiver that had just rejected a block exited 76).
    @Test func connectionClosedInsideAFrameIsACutNotAFramingError() throws {
        var stream = ByteBuffer()
        Message.ping.write(to: &stream)
        MessageCodecTests.samples[3].write(to: &stream)
        let channel = EmbeddedChannel(handler: MessageFrameReader())
        try channel.writeInbound(stream.getSlice(at: 0, length: stream.readableBytes - 100) ?? ByteBuffer())
        #expect(try channel.readInbound(as: Message.self) == .ping)
        channel.pipeline.fireChannelInactive()
        try channel.throwIfErrorCaught()
        #expect(try channel.readInbound(as: Message.self) == nil)
    }
}
