import FerryBinary
import Synchronization

extension VHDX {
    /// BAT payload states ([MS-VHDX] 2.5.1.1); UNMAPPED was 5 in v0.95.
    enum PayloadState {
        static let notPresent: UInt64 = 0
        static let undefined: UInt64 = 1
        static let zero: UInt64 = 2
        static let unmapped: UInt64 = 3
        static let unmappedV095: UInt64 = 5
        static let fullyPresent: UInt64 = 6
        static let partiallyPresent: UInt64 = 7
    }

    /// Guest-to-host translation through the BAT (held in memory, at most 32 MiB).
    final class Mapper: DiskMapper {
        let file: HostFile
        let virtualSize: UInt64
        let blockSize: UInt64
        let chunkRatio: UInt64
        let bat: [UInt64]
        let batOffset: UInt64
        let logicalSectorSize: UInt64
        private let bitmaps: Mutex<TableCache<[UInt8]>>

        init(file: HostFile, virtualSize: UInt64, blockSize: UInt64, chunkRatio: UInt64, bat: [UInt64], batOffset: UInt64,
             logicalSectorSize: UInt64) {
            self.file = file
            self.virtualSize = virtualSize
            self.blockSize = blockSize
            self.chunkRatio = chunkRatio
            self.bat = bat
            self.batOffset = batOffset
            self.logicalSectorSize = logicalSectorSize
            bitmaps = Mutex(TableCache(tableBytes: Int(max(1, blockSize / logicalSectorSize / 8))))
        }

        func entry(_ block: UInt64) -> (index: Int, value: UInt64) {
            let index = Int(block + block / chunkRatio)
            return (index, index < bat.count ? bat[index] : 0)
        }

        /// What one payload block holds.
        private enum Block {
            case hole, zero
            /// FULLY_PRESENT at this host offset.
            case data(HostOffset)
            /// PARTIALLY_PRESENT (differencing): the sector bitmap decides per sector.
            case partial(HostOffset)
        }

        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            var block = offset / blockSize
            let within = offset % blockSize
            let first = try classify(block)
            if case .partial(let host) = first {
                return try partial(block: block, host: host, within: within, limit: limit)
            }
            var length = blockSize - within
            // Extend over following blocks with the same meaning (contiguous for data).
            extend: while length < limit {
                block += 1
                switch (first, try classify(block)) {
                case (.hole, .hole), (.zero, .zero): length += blockSize
                case (.data(let a), .data(let b)) where a.bytes + (length + within) == b.bytes: length += blockSize
                default: break extend
                }
            }
            let source: RunSource
            switch first {
            case .hole: source = .hole
            case .zero: source = .zero
            case .data(let host), .partial(let host): source = .data(file, HostOffset(host.bytes + within))
            }
            return MappedRun(length: min(length, limit), source: source)
        }

        private func classify(_ block: UInt64) throws -> Block {
            let (index, e) = entry(block)
            let state = e & 7
            let host = (e >> 20) << 20
            func located() throws -> HostOffset {
                guard host != 0, host < file.size else {
                    throw file.error(.outOfRange, "VHDX BAT", field: "entry \(index)", at: batOffset + UInt64(index) * 8,
                                     "payload block at \(host) lies outside the \(file.size)-byte file")
                }
                return HostOffset(host)
            }
            switch state {
            case PayloadState.notPresent: return .hole
            case PayloadState.undefined, PayloadState.zero, PayloadState.unmapped, PayloadState.unmappedV095: return .zero
            case PayloadState.fullyPresent: return .data(try located())
            case PayloadState.partiallyPresent: return .partial(try located())
            default:
                throw file.error(.inconsistent, "VHDX BAT", field: "entry \(index)", at: batOffset + UInt64(index) * 8,
                                 "unknown payload block state \(state)")
            }
        }

        /// A partially present block: the chunk's sector bitmap (1 MiB, one bit per
        /// logical sector, LSB first) says which sectors are stored here.
        private func partial(block: UInt64, host: HostOffset, within: UInt64, limit: UInt64) throws -> MappedRun {
            let chunk = block / chunkRatio
            let index = Int((chunk + 1) * (chunkRatio + 1) - 1)
            let entry = index < bat.count ? bat[index] : 0
            let bitmapAt = (entry >> 20) << 20
            guard entry & 7 == 6, bitmapAt != 0 else {
                throw file.error(.inconsistent, "VHDX BAT", field: "entry \(index)", at: batOffset + UInt64(index) * 8,
                                 "block \(block) is partially present but its sector bitmap is not present")
            }
            let sectorsPerBlock = blockSize / logicalSectorSize
            let firstSector = (block % chunkRatio) * sectorsPerBlock
            let sliceAt = bitmapAt + firstSector / 8
            let bits = try bitmaps.table(HostOffset(sliceAt)) {
                try file.bytes(at: HostOffset(sliceAt), count: Int(max(1, sectorsPerBlock / 8)), "VHDX sector bitmap")
            }
            func present(_ s: UInt64) -> Bool { bits[Int(s / 8)] & (1 << UInt8(s % 8)) != 0 }
            let first = within / logicalSectorSize
            let rest = min(limit, blockSize - within)
            var sector = first + 1
            while sector * logicalSectorSize - within < rest, present(sector) == present(first) { sector += 1 }
            let length = min(rest, sector * logicalSectorSize - within)
            return MappedRun(length: length, source: present(first) ? .data(file, HostOffset(host.bytes + within)) : .hole)
        }
    }
}
