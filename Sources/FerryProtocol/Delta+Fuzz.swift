import FerryBinary
import NIOCore

/// The entry point of the delta-sync fuzz target (`FuzzTesting/FuzzDelta`) and of the tests
/// that replay its inputs: a hostile peer's side of the fine pass. The first byte is the disk
/// size in MiB (1–256); the rest is a stream of frames, decoded and fed, every other one, to a
/// sender whose receiver offered a delta disk (the peer plays the receiver: `segments`, `block
/// hashes`, anything) and to a receiver whose sender agreed to the exchange (the peer plays the
/// sender: `block request`, `same blocks`, extents). Before each message the sender asks for
/// the block hashes of the segment the message's first byte names, when it may.
///
/// Properties beyond "no trap": the sender hands on only block hashes it asked for, of exactly
/// the range it asked for, each once; the receiver approves `same blocks` only inside the disk
/// and never twice over the same range.
public enum DeltaFuzz {
    static let segmentSize: UInt64 = 1 << 20

    public static func run(_ bytes: [UInt8]) throws {
        guard let first = bytes.first else { return }
        let size = UInt64(Int(first) % 256 + 1) << 20
        var sender = SenderStateMachine(diskCount: 1, capabilities: .hashExchange, diskSizes: [size])
        _ = sender.start()
        _ = sender.received(.hello(Hello(capabilities: .hashExchange, role: .receiver)))
        _ = sender.received(.ready(DiskReady(index: 0, flags: DiskReady.delta)))
        var receiver = ReceiverStateMachine(diskCount: 1, capabilities: .hashExchange)
        _ = receiver.received(.hello(Hello(capabilities: .hashExchange, role: .sender)))
        _ = receiver.received(.disk(DiskDescription(index: 0, count: 1, size: size, sectorSize: 512, name: "fuzz")))
        _ = receiver.diskOpened(0, flags: DiskReady.delta)

        var asked: [UInt64: Range<UInt64>] = [:]
        var approved: [Range<UInt64>] = []
        var buffer = ByteBuffer(bytes: bytes.dropFirst())
        var turn = 0
        while let message = try? MessageDecoder.next(from: &buffer) {
            turn += 1
            if turn % 2 == 0 {
                let segment = UInt64(bytes[turn % bytes.count]) % (size / segmentSize + 2)
                let start = min(size, segment * segmentSize)  // past the end: an empty range, which the machine must not mind
                let range = start..<min(size, start + segmentSize)
                if case .send = sender.requestBlocks(disk: 0, segment: segment, range: range) { asked[range.lowerBound] = range }
                if case .blockHashes(let h) = sender.received(message) {
                    guard let range = asked.removeValue(forKey: h.offset), UInt64(h.length) == UInt64(range.count) else {
                        throw FuzzFinding("the sender accepted block hashes \(h.offset)+\(h.length) it did not ask for")
                    }
                }
            } else if case .sameBlocks(let same) = receiver.received(message) {
                let range = same.offset..<same.offset + UInt64(same.length)
                guard range.upperBound <= size, !approved.contains(where: { $0.overlaps(range) }) else {
                    throw FuzzFinding("the receiver approved unchanged blocks \(range) past the end or twice")
                }
                approved.append(range)
            }
        }
    }
}
