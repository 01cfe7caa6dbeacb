/// The set of byte ranges of a disk that have arrived, kept as sorted disjoint
/// runs merged on insert. A sender works in disk order with a few requests in
/// flight, so the set stays a handful of runs; `maxRuns` bounds it anyway against
/// a peer that scatters extents on purpose.
public struct Coverage: Sendable, Equatable {
    public static let maxRuns = 4096

    /// Sorted, disjoint, non-adjacent half-open ranges.
    public private(set) var runs: [Range<UInt64>] = []

    public init() {}

    public var totalBytes: UInt64 { runs.reduce(0) { $0 + ($1.upperBound - $1.lowerBound) } }

    /// True when `[0, size)` is covered exactly.
    public func covers(size: UInt64) -> Bool {
        size == 0 ? runs.isEmpty : runs == [0..<size]
    }

    /// Adds `range`; fails if it overlaps anything already present.
    public mutating func insert(_ range: Range<UInt64>) throws(ProtocolError) {
        guard !range.isEmpty else { return }
        // Binary search for the first run ending after range.lowerBound.
        var lo = 0
        var hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].upperBound <= range.lowerBound { lo = mid + 1 } else { hi = mid }
        }
        if lo < runs.count, runs[lo].lowerBound < range.upperBound {
            throw ProtocolError(
                .outOfRange, "extent \(range.lowerBound)..<\(range.upperBound) overlaps bytes already received")
        }
        let joinsLeft = lo > 0 && runs[lo - 1].upperBound == range.lowerBound
        let joinsRight = lo < runs.count && runs[lo].lowerBound == range.upperBound
        switch (joinsLeft, joinsRight) {
        case (true, true):
            runs[lo - 1] = runs[lo - 1].lowerBound..<runs[lo].upperBound
            runs.remove(at: lo)
        case (true, false):
            runs[lo - 1] = runs[lo - 1].lowerBound..<range.upperBound
        case (false, true):
            runs[lo] = range.lowerBound..<runs[lo].upperBound
        case (false, false):
            guard runs.count < Self.maxRuns else {
                throw ProtocolError(.protocolViolation, "more than \(Self.maxRuns) disjoint extents outstanding")
            }
            runs.insert(range, at: lo)
        }
    }
}
