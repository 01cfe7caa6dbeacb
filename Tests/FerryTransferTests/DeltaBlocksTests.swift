@testable import FerryTransfer
import FerryProtocol
import NIOCore
import Testing

/// The receiver's bounds on the fine pass (`DeltaBlocks`): a sender may ask for each
/// segment's block hashes once, hold a bounded number outstanding, and claim unchanged
/// blocks only inside a segment whose hashes it was sent.
@Suite struct DeltaBlocksTests {
    static let segment = UInt64(4 << 20)

    func leaves(_ blocks: Int) -> ByteBuffer {
        var b = ByteBuffer()
        for i in 0..<blocks { b.writeBytes([UInt8](repeating: UInt8(i), count: 32)) }
        return b
    }

    func answered(_ d: DeltaBlocks, _ segment: UInt64) throws {
        try d.reserve(segment)
        d.begin(segment, range: segment * Self.segment..<(segment + 1) * Self.segment, leaves: leaves(64))
    }

    @Test func aSegmentIsAskedForOnce() throws {
        let d = DeltaBlocks(maxPending: 4)
        try answered(d, 1)
        #expect(throws: ProtocolError.self) { try d.reserve(1) }
    }

    @Test func floodsOfRequestsAreRefused() throws {
        let d = DeltaBlocks(maxPending: 4)
        for s in 0..<4 { try answered(d, UInt64(s)) }
        #expect(throws: ProtocolError.self) { try d.reserve(9) }
        // Covering a segment frees its table: the next request is answered.
        d.cover(0..<Self.segment)
        #expect(d.pendingCount == 3)
        try d.reserve(9)
    }

    @Test func unchangedBlocksOutsideAnAnsweredSegmentAreRefused() throws {
        let d = DeltaBlocks(maxPending: 4)
        try answered(d, 2)
        #expect(throws: ProtocolError.self) { _ = try d.take(0..<65536) }
        let taken = try d.take(2 * Self.segment + 65536..<2 * Self.segment + 3 * 65536)
        #expect(taken == [UInt8](repeating: 1, count: 32) + [UInt8](repeating: 2, count: 32))
    }

    @Test func unchangedBlocksRunningPastTheSegmentAreRefused() throws {
        let d = DeltaBlocks(maxPending: 4)
        try answered(d, 0)
        #expect(throws: ProtocolError.self) { _ = try d.take(Self.segment - 65536..<Self.segment + 65536) }
    }

    @Test func aSegmentCoveredByDataAndSameBlocksIsForgotten() throws {
        let d = DeltaBlocks(maxPending: 4)
        try answered(d, 0)
        d.cover(0..<(32 * 65536))
        _ = try d.take(32 * 65536..<Self.segment)
        #expect(d.pendingCount == 0)
        #expect(throws: ProtocolError.self) { _ = try d.take(0..<65536) }
    }
}
