import FerryBinary
import FerryProtocol
import FerryTestSupport
import NIOCore
import NIOEmbedded
import Testing

/// The seed corpus of the wire-frame fuzz target (FuzzTesting/FuzzFrame), made from the codec
/// tests' sample messages, and the replay of every committed seed and crash input through the
/// same comparison the target makes. `FERRY_WRITE_FUZZ_CORPUS=1 swift test --filter
/// FrameFuzzCorpusTests` rewrites the corpus.
@Suite struct FrameFuzzCorpusTests {
    /// What `MessageFrameReader` makes of `pieces` (as FuzzTesting/Sources/FuzzFrame does).
    static func frameReader(_ pieces: [ByteBuffer]) -> ProtocolFuzz.Outcome {
        let channel = EmbeddedChannel(handler: MessageFrameReader())
        var messages: [Message] = []
        var failed = false
        for piece in pieces where !failed {
            do { try channel.writeInbound(piece) } catch { failed = true }
            while let message = try? channel.readInbound(as: Message.self) { messages.append(message) }
        }
        if !failed {
            channel.pipeline.fireChannelInactive()
            do { try channel.throwIfErrorCaught() } catch { failed = true }
        }
        _ = try? channel.finish()
        return (messages, failed)
    }

    static func frame(_ message: Message) -> [UInt8] {
        var buffer = ByteBuffer()
        message.write(to: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// One seed per message kind (cut into 1-byte reads, the hardest for the reader), one stream
    /// of all of them in 7-byte reads, and one that ends inside a frame.
    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let small = MessageCodecTests.samples.map { message -> Message in
            guard case .data(var extent) = message else { return message }
            extent.data = ByteBuffer(bytes: Array(repeating: 9, count: 300))
            extent.hashes = ByteBuffer(bytes: Array(repeating: 7, count: 32))
            return .data(extent)
        }
        var seeds = small.map { ("\($0.kind)", [UInt8(0)] + frame($0)) }
        let stream = small.flatMap(frame)
        seeds.append(("stream", [6] + stream))
        seeds.append(("cut", [255] + stream.dropLast(5)))
        return seeds
    }

    @Test func seedsDecodeAlikeBothWays() throws {
        let seeds = Self.seeds()
        for seed in seeds {
            #expect(throws: Never.self, "\(seed.name)") { try ProtocolFuzz.run(seed.bytes, read: Self.frameReader) }
        }
        let all = Self.frameReader([ByteBuffer(bytes: seeds[seeds.count - 2].bytes.dropFirst())])
        #expect(all.messages.count == MessageCodecTests.samples.count && !all.failed)
        try FuzzCorpus.writeSeeds("FuzzFrame", seeds)
    }

    /// A reader that loses a message is caught by the comparison: the check can fail.
    @Test func aReaderThatDropsAMessageIsAFinding() {
        let stream = Self.seeds()[Self.seeds().count - 2].bytes
        #expect(throws: FuzzFinding.self) {
            try ProtocolFuzz.run(stream) { pieces in
                let outcome = Self.frameReader(pieces)
                return (Array(outcome.messages.dropLast()), outcome.failed)
            }
        }
    }

    /// Every committed seed and every input that once crashed the target (FuzzTesting/FailCases)
    /// decodes alike both ways or fails with a ProtocolError, never a trap.
    @Test func committedInputsDecodeAlike() throws {
        let inputs = try FuzzCorpus.committed("FuzzFrame")
        #expect(!inputs.isEmpty, "no committed corpus for FuzzFrame")
        for input in inputs {
            #expect(throws: Never.self, "\(input.name)") { try ProtocolFuzz.run(input.bytes, read: Self.frameReader) }
        }
    }
}
