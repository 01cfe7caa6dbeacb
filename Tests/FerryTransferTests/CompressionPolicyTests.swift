import FerryProtocol
@testable import FerryTransfer
import Testing

@Suite struct CompressionPolicyTests {
    @Test func linkBoundPicksZstdAndBacksOffOnIncompressibleData() throws {
        let codecs = Codec.available()
        guard codecs.contains(where: { $0.kind == .zstd }) else {
            print("SKIP: libzstd.so.1 not installed")
            return
        }
        let policy = CompressionPolicy(mode: .auto, usable: codecs)
        // Workers mostly wait for the socket: the link is the bottleneck.
        policy.record(work: 0.001, wait: 0.1)
        #expect(policy.choose()?.kind == .zstd)
        // An incompressible chunk: the next 16 chunks go raw, then a probe.
        policy.record(original: 1 << 20, compressed: nil)
        let skipped = (0..<15).map { _ in policy.choose() }
        #expect(skipped.allSatisfy { $0 == nil })
        #expect(policy.choose() != nil)
        // A second failure doubles the pause.
        policy.record(original: 1 << 20, compressed: nil)
        #expect((0..<31).map { _ in policy.choose() }.allSatisfy { $0 == nil })
    }

    @Test func cpuBoundMostlySendsRaw() {
        let policy = CompressionPolicy(mode: .auto, usable: Codec.available())
        policy.record(work: 0.1, wait: 0.0001)
        let chosen = (0..<64).compactMap { _ in policy.choose() }
        #expect(chosen.count <= 4)
    }

    @Test func noneNeverCompresses() {
        let policy = CompressionPolicy(mode: .none, usable: Codec.available())
        #expect(policy.choose() == nil)
    }
}
