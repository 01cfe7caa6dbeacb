import CFerryShims

/// A run of same-kind 64 KiB blocks inside one request buffer: bytes `[start, end)`.
public struct BlockRun: Sendable, Equatable {
    public var start: Int
    public var end: Int
    public var isZero: Bool
}

/// Per-request block work for callers outside the copy engine (the network sender
/// and receiver): find zero blocks and hash data blocks, once per byte.
public enum BlockRuns {
    /// Splits `data` (which starts on a block boundary) into runs of zero and data
    /// blocks, appending the leaf hash of every block — zero or not — to `hashes`
    /// in block order. Zero blocks get the constant zero leaf without hashing.
    public static func split(
        _ data: UnsafeRawBufferPointer, hashes: inout [BlockHash], leaf: LeafHash = .sha256
    ) -> [BlockRun] {
        let block = DiskDigest.blockSize
        var runs: [BlockRun] = []
        var start = 0
        while start < data.count {
            let end = min(start + block, data.count)
            let bytes = UnsafeRawBufferPointer(rebasing: data[start..<end])
            let isZero = ferry_is_zero(bytes.baseAddress, bytes.count) == 1
            hashes.append(isZero ? leaf.zeros(count: bytes.count) : leaf.hash(bytes))
            if let last = runs.last, last.isZero == isZero {
                runs[runs.count - 1].end = end
            } else {
                runs.append(BlockRun(start: start, end: end, isZero: isZero))
            }
            start = end
        }
        return runs
    }

    /// Index of the first block of `data` whose hash differs from the 32-byte leaves
    /// in `expected` (block order), or nil when all match.
    public static func firstMismatch(
        _ data: UnsafeRawBufferPointer, expected: UnsafeRawBufferPointer, leaf: LeafHash = .sha256
    ) -> Int? {
        let block = DiskDigest.blockSize
        var index = 0
        var start = 0
        while start < data.count {
            let end = min(start + block, data.count)
            guard (index + 1) * 32 <= expected.count else { return index }
            let ours = leaf.hash(UnsafeRawBufferPointer(rebasing: data[start..<end]))
            let matches = ours.withRawBytes { raw in
                raw.elementsEqual(UnsafeRawBufferPointer(rebasing: expected[index * 32..<(index + 1) * 32]))
            }
            if !matches { return index }
            index += 1
            start = end
        }
        return nil
    }
}

extension BlockHash {
    /// A leaf from its 32 raw bytes (as sent on the wire); nil unless exactly 32 bytes.
    public init?(raw: UnsafeRawBufferPointer) {
        guard raw.count == 32 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: raw) }
        self.init(words: words)
    }

    /// The 32 raw bytes, without allocating.
    public func withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var words = (a, b, c, d)
        return try Swift.withUnsafeBytes(of: &words) { try body($0) }
    }
}

extension CopyRequest {
    /// A request built outside the planner (the network sender trims planned requests
    /// around ranges a resumed receiver already holds).
    public init(at offset: UInt64, length: UInt64, kind: Kind) {
        self.init(offset: offset, length: length, kind: kind)
    }
}
