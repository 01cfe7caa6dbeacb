import FerryBinary

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
    struct Mapper: DiskMapper {
        let file: HostFile
        let virtualSize: UInt64
        let blockSize: UInt64
        let chunkRatio: UInt64
        let bat: [UInt64]
        let batOffset: UInt64

        func entry(_ block: UInt64) -> (index: Int, value: UInt64) {
            let index = Int(block + block / chunkRatio)
            return (index, index < bat.count ? bat[index] : 0)
        }

        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            var block = offset / blockSize
            let within = offset % blockSize
            let first = try classify(block)
            var length = blockSize - within
            while length < limit {
                block += 1
                let next = try classify(block)
                switch (first, next) {
                case (.hole, .hole), (.zero, .zero): length += blockSize
                case (.data(_, let a), .data(_, let b)) where a.bytes + blockSize == b.bytes: length += blockSize
                default: return MappedRun(length: min(length, limit), source: shifted(first, within))
                }
            }
            return MappedRun(length: min(length, limit), source: shifted(first, within))
        }

        private func shifted(_ source: RunSource, _ within: UInt64) -> RunSource {
            if case .data(let f, let host) = source { return .data(f, HostOffset(host.bytes + within)) }
            return source
        }

        /// The whole block's source (data offsets point at the block start).
        private func classify(_ block: UInt64) throws -> RunSource {
            let (index, e) = entry(block)
            let state = e & 7
            let host = (e >> 20) << 20
            switch state {
            case PayloadState.notPresent: return .hole
            case PayloadState.undefined, PayloadState.zero, PayloadState.unmapped, PayloadState.unmappedV095: return .zero
            case PayloadState.fullyPresent:
                guard host != 0, host < file.size else {
                    throw file.error(.outOfRange, "VHDX BAT", field: "entry \(index)", at: batOffset + UInt64(index) * 8,
                                     "payload block at \(host) lies outside the \(file.size)-byte file")
                }
                return .data(file, HostOffset(host))
            case PayloadState.partiallyPresent:
                throw file.error(.unsupportedFeature, "VHDX BAT", field: "entry \(index)", at: batOffset + UInt64(index) * 8,
                                 "partially present blocks belong to differencing disks, which ferry does not read yet")
            default:
                throw file.error(.inconsistent, "VHDX BAT", field: "entry \(index)", at: batOffset + UInt64(index) * 8,
                                 "unknown payload block state \(state)")
            }
        }
    }
}
