import FerryProtocol
import NIOCore
import Testing

@Suite struct MessageCodecTests {
    static func frame(_ message: Message) -> ByteBuffer {
        var buffer = ByteBuffer()
        message.write(to: &buffer)
        return buffer
    }

    static let samples: [Message] = [
        .hello(Hello(capabilities: [.zstd, .gzip], role: .sender)),
        .disk(DiskDescription(index: 1, count: 2, size: 1 << 40, sectorSize: 4096, name: "disk-1.vmdk")),
        .ready(DiskReady(index: 1, flags: DiskReady.targetIsZero)),
        .data(DataExtent(
            disk: 0, offset: 65536, hashes: ByteBuffer(bytes: Array(repeating: 7, count: 64)),
            data: ByteBuffer(bytes: Array(repeating: 9, count: 65536 + 10)))),
        .zero(ZeroExtent(disk: 0, offset: 1 << 20, length: 1 << 35)),
        .compressed(CompressedExtent(
            disk: 0, offset: 0, length: 65536, codec: .zstd, hashes: ByteBuffer(bytes: Array(repeating: 1, count: 32)),
            compressed: ByteBuffer(bytes: [1, 2, 3]))),
        .ack(Ack(disk: 0, written: 123, durable: 100)),
        .finish(Finish(disk: 0, digest: Array(0..<32))),
        .result(DiskResult(disk: 0, status: .verified, digest: Array(repeating: 0xAB, count: 32))),
        .error(ErrorMessage(ProtocolError(.verification, "block 3 is wrong"))),
        .segments(SegmentList(
            disk: 0, segmentSize: 64 << 20, isFinal: true,
            entries: [.init(index: 3, digest: Array(repeating: 9, count: 32)), .init(index: 7, digest: Array(0..<32))])),
        .same(SameSegment(disk: 0, offset: 64 << 20, length: 131_072, leaves: ByteBuffer(repeating: 3, count: 64))),
        .blockRequest(BlockRequest(disk: 1, segment: 12)),
        .blockHashes(BlockHashList(disk: 1, offset: 12 << 22, length: 200_000, leaves: ByteBuffer(repeating: 5, count: 128))),
        .sameBlocks(SameBlocks(disk: 1, offset: (12 << 22) + 65536, length: 131_072)),
        .ping,
    ]

    @Test(arguments: samples)
    func roundTrip(_ message: Message) throws {
        var buffer = Self.frame(message)
        let decoded = try MessageDecoder.next(from: &buffer)
        #expect(decoded == message)
        #expect(buffer.readableBytes == 0)
    }

    @Test(arguments: samples)
    func everyTruncationWaitsOrFails(_ message: Message) throws {
        let whole = Self.frame(message)
        // A prefix of a frame is never a message: the decoder waits for more bytes.
        for cut in [0, 3, 4, 5, whole.readableBytes - 1] where cut >= 0 && cut < whole.readableBytes {
            var prefix = whole.getSlice(at: 0, length: cut) ?? ByteBuffer()
            #expect(try MessageDecoder.next(from: &prefix) == nil)
        }
        // A frame whose length field is shortened makes the payload short: an error, not a crash.
        if whole.readableBytes > 6 {
            var short = whole
            short.setInteger(UInt32(whole.readableBytes - 6), at: 0, endianness: .big)
            #expect(throws: ProtocolError.self) { _ = try MessageDecoder.next(from: &short) }
        }
    }

    @Test func oversizeFrameIsRefusedBeforeBuffering() {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(WireLimits.maxFrame + 1), endianness: .big)
        buffer.writeInteger(UInt8(0x10))
        do {
            _ = try MessageDecoder.next(from: &buffer)
            Issue.record("an oversize frame was accepted")
        } catch {
            #expect(error.code == .oversizeFrame)
        }
    }

    @Test func unknownTypeAndTrailingBytesAreViolations() {
        var unknown = ByteBuffer(bytes: [0, 0, 0, 1, 0x7F])
        #expect(throws: ProtocolError.self) { _ = try MessageDecoder.next(from: &unknown) }
        var trailing = Self.frame(.ack(Ack(disk: 0, written: 1, durable: 1)))
        trailing.setInteger(UInt32(trailing.readableBytes - 4 + 1), at: 0, endianness: .big)
        trailing.writeInteger(UInt8(0))
        #expect(throws: ProtocolError.self) { _ = try MessageDecoder.next(from: &trailing) }
    }

    @Test func extentShapeRules() {
        // Misaligned offset.
        var misaligned = Self.frame(.zero(ZeroExtent(disk: 0, offset: 512, length: 65536)))
        #expect(throws: ProtocolError.self) { _ = try MessageDecoder.next(from: &misaligned) }
        // Data length over the limit is refused from the header alone.
        var big = ByteBuffer()
        big.writeInteger(UInt32(1 + 16), endianness: .big)
        big.writeInteger(UInt8(0x10))
        big.writeInteger(UInt32(0), endianness: .big)
        big.writeInteger(UInt64(0), endianness: .big)
        big.writeInteger(UInt32(WireLimits.maxExtentData + 1), endianness: .big)
        #expect(throws: ProtocolError.self) { _ = try MessageDecoder.next(from: &big) }
    }

    @Test func badMagicIsNotFerry() {
        var buffer = Self.frame(.hello(Hello(capabilities: [], role: .sender)))
        buffer.setInteger(UInt32(0x4854_5450), at: 5, endianness: .big)  // "HTTP"
        #expect(throws: ProtocolError.self) { _ = try MessageDecoder.next(from: &buffer) }
    }
}

@Suite struct FrameWriterTests {
    @Test(arguments: MessageCodecTests.samples)
    func headerPlusBulkEqualsWholeFrame(_ message: Message) throws {
        var whole = ByteBuffer()
        message.write(to: &whole)
        var split = ByteBuffer()
        if var bulk = message.writeFrame(into: &split) { split.writeBuffer(&bulk) }
        #expect(split == whole)
    }
}
