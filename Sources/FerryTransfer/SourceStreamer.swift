import FerryCopy
import FerryDisk
import FerryProtocol
import Foundation
import NIOCore
import NIOPosix

/// Reads one source disk in requests, finds zero blocks, hashes each data block
/// once (the same leaves feed the sender's digest and go on the wire), and turns
/// each request into extent messages. Zero runs become `ZeroExtent`s and never
/// cross the wire as bytes.
struct SourceStreamer: Sendable {
    let index: UInt32
    let source: any BlockDevice
    let planner: CopyPlanner
    let digest: DigestBuilder
    let counters: CopyCounters
    let policy: CompressionPolicy?
    /// Segments the receiver already holds and the sender verified unchanged (resume).
    let skip: SegmentSkip?
    let allocator = ByteBufferAllocator()

    init(
        index: UInt32, source: any BlockDevice, requestSize: Int, counters: CopyCounters, policy: CompressionPolicy?,
        digest: DigestBuilder? = nil, leaf: LeafHash = .sha256, skip: SegmentSkip? = nil, scout: ZeroScout? = nil
    ) {
        self.policy = policy
        self.skip = skip
        self.index = index
        self.source = source
        let size = min(max(requestSize, DiskDigest.blockSize), WireLimits.maxExtentData)
        planner = CopyPlanner(source: source, requestSize: size, scout: scout)
        self.digest = digest ?? DigestBuilder(size: source.size, leaf: leaf)
        self.counters = counters
    }

    /// The messages for the next request, or nil when the disk is done. Blocking: run on the thread pool.
    func next() throws -> [Message]? {
        while let request = try planner.next() {
            var messages: [Message] = []
            for piece in skip?.remaining(request) ?? [request] {
                switch piece.kind {
                case .zero:
                    digest.addZeros(offset: piece.offset, length: piece.length)
                    counters.add(zero: piece.length)
                    messages.append(.zero(ZeroExtent(disk: index, offset: piece.offset, length: piece.length)))
                case .data:
                    let started = ContinuousClock.now
                    messages += try read(piece)
                    policy?.recordPrepared(bytes: Int(piece.length), seconds: (ContinuousClock.now - started).seconds)
                }
            }
            if !messages.isEmpty { return messages }
        }
        return nil
    }

    func read(_ request: CopyRequest) throws -> [Message] {
        let length = Int(request.length)
        var buffer = allocator.buffer(capacity: length)
        try counters.stages.measure(.sourceRead) {
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]), at: request.offset)
                return length
            }
        }
        // Zero detection, hashing and compression: the progress line's CPU stage.
        let prepared = DispatchTime.now().uptimeNanoseconds
        defer { counters.stages.add(.cpu, Double(DispatchTime.now().uptimeNanoseconds - prepared) / 1e9) }
        var leaves: [BlockHash] = []
        leaves.reserveCapacity(ExtentRules.blockCount(forLength: length))
        let runs = buffer.withUnsafeReadableBytes { BlockRuns.split($0, hashes: &leaves, leaf: digest.leaf) }
        let firstBlock = request.offset / UInt64(DiskDigest.blockSize)
        digest.add(.hashes(leaves), at: firstBlock)

        var hashes = allocator.buffer(capacity: leaves.count * WireLimits.hashSize)
        for leaf in leaves { leaf.withRawBytes { _ = hashes.writeBytes($0) } }

        var messages: [Message] = []
        messages.reserveCapacity(runs.count)
        for run in runs {
            let offset = request.offset + UInt64(run.start)
            let count = run.end - run.start
            if run.isZero {
                messages.append(.zero(ZeroExtent(disk: index, offset: offset, length: UInt64(count))))
                counters.add(zero: UInt64(count))
            } else {
                let firstLeaf = run.start / DiskDigest.blockSize * WireLimits.hashSize
                let leafBytes = ExtentRules.hashBytes(forLength: count)
                guard let runHashes = hashes.getSlice(at: firstLeaf, length: leafBytes),
                    let data = buffer.getSlice(at: run.start, length: count)
                else { continue }  // unreachable: runs lie inside the buffers
                let entropy: () -> Double? = { data.withUnsafeReadableBytes { CompressionHint.entropy($0) } }
                if let policy, let (codec, packed) = policy.compress(length: count, entropy: entropy, with: { compress(data, with: $0) }) {
                    messages.append(.compressed(CompressedExtent(
                        disk: index, offset: offset, length: count, codec: codec.kind, hashes: runHashes,
                        compressed: packed)))
                    counters.add(data: UInt64(count))
                    continue
                }
                messages.append(.data(DataExtent(disk: index, offset: offset, hashes: runHashes, data: data)))
                counters.add(data: UInt64(count))
            }
        }
        return messages
    }

    /// The compressed bytes, or nil when they would not be under 90 % of the original.
    private func compress(_ data: ByteBuffer, with codec: Codec) -> ByteBuffer? {
        let limit = Int(Double(data.readableBytes) * CompressionPolicy.worthwhileRatio)
        guard limit > 0 else { return nil }
        var out = allocator.buffer(capacity: limit)
        var ok = false
        _ = data.withUnsafeReadableBytes { input in
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: limit) { output in
                guard let n = codec.compress(input, into: UnsafeMutableRawBufferPointer(rebasing: output[0..<limit])) else { return 0 }
                ok = n > 0 && n < limit
                return ok ? n : 0
            }
        }
        return ok ? out : nil
    }
}

/// The verified-unchanged segments a resumed transfer does not send again.
struct SegmentSkip: Sendable {
    let segmentSize: UInt64
    let matched: Set<UInt64>

    /// The parts of `request` outside matched segments (block-aligned: segments are whole blocks).
    func remaining(_ request: CopyRequest) -> [CopyRequest] {
        guard !matched.isEmpty else { return [request] }
        var pieces: [CopyRequest] = []
        var position = request.offset
        let end = request.offset + request.length
        while position < end {
            let segment = position / segmentSize
            let stop = min(end, (segment + 1) * segmentSize)
            if !matched.contains(segment) {
                if var last = pieces.last, last.offset + last.length == position {
                    last.length += stop - position
                    pieces[pieces.count - 1] = last
                } else {
                    pieces.append(CopyRequest(at: position, length: stop - position, kind: request.kind))
                }
            }
            position = stop
        }
        return pieces
    }
}
