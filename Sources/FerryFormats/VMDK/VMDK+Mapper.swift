import FerryBinary

extension VMDK {
    /// What one descriptor extent maps to.
    enum ExtentMap: Sendable {
        /// FLAT / VMFS: guest bytes at `HostOffset` onward in the file.
        case flat(HostFile, HostOffset)
        /// ZERO extents read as zeros.
        case zero
        /// NOACCESS extents and unallocated space fall through to the parent (or zeros).
        case hole
        case sparse(SparseExtent)
        case cowd(COWDExtent)
        case seSparse(SESparseExtent)
    }

    /// The virtual disk as the descriptor's extents laid end to end.
    struct Mapper: DiskMapper {
        struct Piece: Sendable {
            let start: UInt64
            let length: UInt64
            let map: ExtentMap
        }
        let pieces: [Piece]
        let virtualSize: UInt64

        init(pieces: [Piece]) {
            self.pieces = pieces
            virtualSize = pieces.last.map { $0.start + $0.length } ?? 0
        }

        /// The piece holding `offset`, by binary search (pieces are sorted and contiguous).
        private func piece(at offset: UInt64) -> Piece? {
            var low = 0
            var high = pieces.count
            while low < high {
                let mid = (low + high) / 2
                if pieces[mid].start + pieces[mid].length <= offset { low = mid + 1 } else { high = mid }
            }
            return low < pieces.count ? pieces[low] : nil
        }

        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            guard let piece = piece(at: offset) else { return MappedRun(length: limit, source: .hole) }
            let local = offset - piece.start
            let cap = min(limit, piece.length - local)
            switch piece.map {
            case .flat(let file, let base): return MappedRun(length: cap, source: .data(file, HostOffset(base.bytes + local)))
            case .zero: return MappedRun(length: cap, source: .zero)
            case .hole: return MappedRun(length: cap, source: .hole)
            case .sparse(let extent): return try extent.run(at: local, limit: cap)
            case .cowd(let extent): return try extent.run(at: local, limit: cap)
            case .seSparse(let extent): return try extent.run(at: local, limit: cap)
            }
        }

        func decompress(_ unit: CompressedUnit) throws -> [UInt8] {
            for piece in pieces {
                if case .sparse(let extent) = piece.map, extent.file === unit.file { return try extent.decompress(unit) }
            }
            throw FormatError(.inconsistent, structure: "VMDK extent", offset: unit.offset.bytes, file: unit.file.path,
                              "no sparse extent owns this compressed grain")
        }
    }
}
