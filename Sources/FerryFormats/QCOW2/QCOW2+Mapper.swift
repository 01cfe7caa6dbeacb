import FerryBinary
import Synchronization

extension QCOW2 {
    /// Guest-to-host translation through the L1 table (held in memory) and L2
    /// tables (read on demand, kept in a bounded cache). Runs extend across
    /// consecutive L2 entries with the same meaning, so a sparse 100 GiB image
    /// maps in one pass over its L2 tables and contiguous data reads in one piece.
    final class Mapper: DiskMapper {
        let file: HostFile
        let header: Header
        let l1: [UInt64]
        let codec: Codec
        private let cache: Mutex<TableCache<[UInt64]>>

        var virtualSize: UInt64 { header.size }
        private var clusterSize: UInt64 { header.clusterSize }

        init(file: HostFile, header: Header, l1: [UInt64]) {
            self.file = file
            self.header = header
            self.l1 = l1
            codec = header.compressionType == 1 ? .zstd : .rawDeflate
            cache = Mutex(TableCache(tableBytes: Int(header.clusterSize)))
        }

        /// What one cluster holds, decoded from its L2 entry.
        private enum Cluster {
            case hole, zero
            case data(HostOffset)
            case compressed(CompressedUnit)
            /// Extended L2: 32 subclusters, each allocated (data), zero, or a hole.
            case subclusters(HostOffset, allocated: UInt32, zero: UInt32)
        }

        /// A stretch inside one cluster with one meaning.
        private enum Piece {
            case hole, zero
            case data(HostOffset)
            case compressed(CompressedUnit, within: Int)
        }

        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            let clusterIndex = offset >> UInt64(header.clusterBits)
            let l1Index = clusterIndex / header.l2Entries
            var l2Index = clusterIndex % header.l2Entries
            let within = offset & (clusterSize - 1)
            // Guest bytes covered by the rest of this L2 table.
            let tableSpan = (header.l2Entries - l2Index) * clusterSize - within
            guard l1Index < UInt64(l1.count), l1[Int(l1Index)] & QCOW2.offsetMask != 0 else {
                return MappedRun(length: min(limit, tableSpan), source: .hole)
            }
            let table = try l2Table(l1Index: Int(l1Index))
            let tableOffset = l1[Int(l1Index)] & QCOW2.offsetMask
            let (first, firstLength) = try piece(table, tableOffset, Int(l2Index), within: Int(within))
            var length = firstLength
            var atClusterEnd = firstLength == clusterSize - within
            // Extend over following clusters of this table while they continue the first piece.
            while length < limit, atClusterEnd {
                l2Index += 1
                guard l2Index < header.l2Entries else { break }
                let (next, nextLength) = try piece(table, tableOffset, Int(l2Index), within: 0)
                guard Self.continues(first, next, after: length) else { break }
                length += nextLength
                atClusterEnd = nextLength == clusterSize
            }
            let source: RunSource
            switch first {
            case .hole: source = .hole
            case .zero: source = .zero
            case .data(let host): source = .data(file, host)
            case .compressed(let unit, let w): source = .compressed(unit, within: w)
            }
            return MappedRun(length: min(length, limit), source: source)
        }

        private static func continues(_ first: Piece, _ next: Piece, after length: UInt64) -> Bool {
            switch (first, next) {
            case (.hole, .hole), (.zero, .zero): return true
            case (.data(let a), .data(let b)): return a.bytes &+ length == b.bytes
            default: return false
            }
        }

        /// The longest piece inside cluster `index` of `table` starting `within` bytes in.
        private func piece(_ table: [UInt64], _ tableOffset: UInt64, _ index: Int, within: Int) throws -> (Piece, UInt64) {
            let rest = clusterSize - UInt64(within)
            switch try cluster(table, tableOffset, index) {
            case .hole: return (.hole, rest)
            case .zero: return (.zero, rest)
            case .data(let host): return (.data(HostOffset(host.bytes + UInt64(within))), rest)
            case .compressed(let unit): return (.compressed(unit, within: within), rest)
            case .subclusters(let host, let allocated, let zero):
                let sub = clusterSize / 32
                let first = within / Int(sub)
                func kind(_ i: Int) -> Int { (allocated >> i) & 1 != 0 ? 2 : ((zero >> i) & 1 != 0 ? 1 : 0) }
                var last = first
                while last + 1 < 32, kind(last + 1) == kind(first) { last += 1 }
                let length = UInt64(last + 1) * sub - UInt64(within)
                switch kind(first) {
                case 2: return (.data(HostOffset(host.bytes + UInt64(within))), length)
                case 1: return (.zero, length)
                default: return (.hole, length)
                }
            }
        }

        /// Decodes L2 entry `index` (qcow2.rst "Cluster mapping"), validating it.
        private func cluster(_ table: [UInt64], _ tableOffset: UInt64, _ index: Int) throws -> Cluster {
            let width = header.extendedL2 ? 2 : 1
            let entry = table[index * width]
            let entryOffset = tableOffset + UInt64(index) * header.l2EntryBytes
            func corrupt(_ detail: String) -> FormatError {
                file.error(.inconsistent, "qcow2 L2 table", field: "entry \(index)", at: entryOffset, detail)
            }
            if entry & QCOW2.compressedFlag != 0 {
                // x = 62 - (cluster_bits - 8): low x bits are the host byte offset,
                // the next (cluster_bits - 8) bits count additional 512-byte sectors.
                let x = 62 - (UInt64(header.clusterBits) - 8)
                let host = entry & ((1 << x) - 1)
                let sectors = (entry >> x) & ((1 << (UInt64(header.clusterBits) - 8)) - 1)
                guard host < file.size else {
                    throw corrupt("compressed cluster at host offset \(host) lies past the end of the \(file.size)-byte file")
                }
                let end = (host & ~511) + (sectors + 1) * 512
                let unit = CompressedUnit(
                    file: file, offset: HostOffset(host), storedLength: Int(end - host),
                    unitSize: Int(clusterSize), guestOffset: 0)
                return .compressed(unit)
            }
            let host = entry & QCOW2.offsetMask
            if host & (clusterSize - 1) != 0 {
                throw corrupt("data cluster offset \(host) is not aligned to the \(clusterSize)-byte cluster size")
            }
            if host != 0, host >= file.size {
                throw corrupt("data cluster at host offset \(host) lies past the end of the \(file.size)-byte file")
            }
            if header.extendedL2 {
                let bitmap = table[index * 2 + 1]
                let allocated = UInt32(truncatingIfNeeded: bitmap)
                let zero = UInt32(truncatingIfNeeded: bitmap >> 32)
                guard allocated & zero == 0 else { throw corrupt("subclusters are marked both allocated and zero") }
                if host == 0 {
                    guard allocated == 0 else { throw corrupt("subclusters are allocated but the cluster has no host offset") }
                    return zero == 0 ? .hole : .subclusters(HostOffset(0), allocated: 0, zero: zero)
                }
                return .subclusters(HostOffset(host), allocated: allocated, zero: zero)
            }
            if entry & QCOW2.zeroFlag != 0 {
                guard header.version >= 3 else { throw corrupt("zero flag set in a version 2 image") }
                return .zero
            }
            return host == 0 ? .hole : .data(HostOffset(host))
        }

        /// The L2 table for an L1 index, from the cache or the file.
        private func l2Table(l1Index: Int) throws -> [UInt64] {
            let offset = l1[l1Index] & QCOW2.offsetMask
            guard offset & (clusterSize - 1) == 0 else {
                throw file.error(.inconsistent, "qcow2 L1 table", field: "entry \(l1Index)",
                                 at: header.l1TableOffset + UInt64(l1Index) * 8,
                                 "L2 table offset \(offset) is not cluster aligned")
            }
            return try cache.table(HostOffset(offset)) {
                QCOW2.decodeBigEndian(try file.bytes(at: HostOffset(offset), count: Int(clusterSize), "qcow2 L2 table"))
            }
        }

        func decompress(_ unit: CompressedUnit) throws -> [UInt8] {
            // The stored length is an upper bound rounded to sectors; the last
            // compressed cluster may end before it at end of file (qemu clips too).
            let available = min(UInt64(unit.storedLength), file.size - unit.offset.bytes)
            let input = try file.bytes(at: unit.offset, count: Int(available), "qcow2 compressed cluster")
            return try codec.decompress(
                input, outputSize: unit.unitSize, structure: "qcow2 compressed cluster", file: file.path,
                offset: unit.offset.bytes)
        }
    }

    /// Big-endian u64 words of a table.
    static func decodeBigEndian(_ raw: [UInt8]) -> [UInt64] {
        var table = [UInt64](repeating: 0, count: raw.count / 8)
        raw.withUnsafeBytes { bytes in
            for i in 0..<table.count {
                table[i] = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            }
        }
        return table
    }
}
