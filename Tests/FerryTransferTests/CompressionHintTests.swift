import FerryTestSupport
@testable import FerryTransfer
import Foundation
import Testing

/// `CompressionHint`: the sampled entropy `--compress auto` uses to notice data changing character.
@Suite struct CompressionHintTests {
    static func entropy(_ bytes: [UInt8]) -> Double {
        bytes.withUnsafeBytes { CompressionHint.entropy($0) }
    }

    @Test func randomBytesReadNearEight() {
        var rng = SeededRandom(seed: 14)
        let e = Self.entropy(rng.bytes(1 << 20))
        #expect(e > 7.9 && e <= 8.0, "\(e)")
    }

    @Test func zerosAndOneByteReadZero() {
        #expect(Self.entropy([UInt8](repeating: 0, count: 1 << 20)) == 0)
        #expect(Self.entropy([UInt8](repeating: 0x41, count: 100)) == 0)
        #expect(Self.entropy([]) == 0)
    }

    @Test func textReadsLow() {
        let words = ["the", "disk", "boots", "after", "migration", "registry", "driver", "ferry", "\n", "a", "of"]
        var rng = SeededRandom(seed: 3)
        var text = ""
        while text.utf8.count < 1 << 20 { text += words[Int(rng.next() % UInt64(words.count))] + " " }
        let e = Self.entropy(Array(text.utf8))
        #expect(e > 2 && e < 5, "\(e)")
    }

    /// Samples are spread over the whole chunk: text in the second half of a random chunk lowers it.
    @Test func theSampleSpansTheChunk() {
        var rng = SeededRandom(seed: 5)
        var bytes = rng.bytes(1 << 20)
        let all = Self.entropy(bytes)
        for i in (bytes.count / 2)..<bytes.count { bytes[i] = UInt8(ascii: "a") + UInt8(i % 3) }
        #expect(Self.entropy(bytes) < all - 1)
    }
}
