import FerryBinary
import FerryProtocol
import FerryTestSupport
import NIOCore
import Testing

/// The seed corpus of the delta-sync fuzz target (FuzzTesting/FuzzDelta) and the replay of every
/// committed input. `FERRY_WRITE_FUZZ_CORPUS=1 swift test --filter DeltaFuzzCorpusTests`
/// rewrites the corpus.
@Suite struct DeltaFuzzCorpusTests {
    static func frames(_ messages: [Message]) -> [UInt8] {
        var buffer = ByteBuffer()
        for m in messages { m.write(to: &buffer) }
        return Array(buffer.readableBytesView)
    }

    static func leaves(_ length: Int) -> ByteBuffer { ByteBuffer(repeating: 4, count: (length + 65535) / 65536 * 32) }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let list = Message.segments(SegmentList(
            disk: 0, segmentSize: 1 << 20, isFinal: true,
            entries: (0..<4).map { SegmentList.Entry(index: UInt64($0), digest: [UInt8](repeating: 1, count: 32)) }))
        let honest: [Message] = [
            .sameBlocks(SameBlocks(disk: 0, offset: 0, length: 65536)), list,
            .sameBlocks(SameBlocks(disk: 0, offset: 65536, length: 131_072)),
            .blockHashes(BlockHashList(disk: 0, offset: 1 << 20, length: 1 << 20, leaves: leaves(1 << 20))),
            .blockRequest(BlockRequest(disk: 0, segment: 1)),
            .blockHashes(BlockHashList(disk: 0, offset: 2 << 20, length: 1 << 20, leaves: leaves(1 << 20))),
        ]
        let hostile: [Message] = [
            .sameBlocks(SameBlocks(disk: 0, offset: 3 << 20, length: 1 << 20)),
            .blockHashes(BlockHashList(disk: 0, offset: 9 << 20, length: 65536, leaves: leaves(65536))),
            .sameBlocks(SameBlocks(disk: 0, offset: 3 << 20, length: 65536)),
            .blockHashes(BlockHashList(disk: 0, offset: 0, length: 65536, leaves: leaves(65536))),
        ]
        return [("honest", [3] + frames(honest)), ("hostile", [0] + frames(hostile)), ("big", [255] + frames(honest + hostile))]
    }

    @Test func seedsRunClean() throws {
        for seed in Self.seeds() {
            #expect(throws: Never.self, "\(seed.name)") { try DeltaFuzz.run(seed.bytes) }
        }
        try FuzzCorpus.writeSeeds("FuzzDelta", Self.seeds())
    }

    @Test func committedInputsRunClean() throws {
        let inputs = try FuzzCorpus.committed("FuzzDelta")
        #expect(!inputs.isEmpty, "no committed corpus for FuzzDelta")
        for input in inputs {
            #expect(throws: Never.self, "\(input.name)") {
                do { try DeltaFuzz.run(input.bytes) } catch let error as ProtocolError { _ = error }
            }
        }
    }
}
