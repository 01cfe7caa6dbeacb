import FerryBinary
import Synchronization

extension VMDK {
    /// One hosted sparse extent (monolithicSparse, twoGbMaxExtentSparse piece,
    /// streamOptimized): the grain directory in memory, grain tables cached.
    /// Offsets given to `run` are relative to the start of this extent.
    final class SparseExtent: Sendable {
        let file: HostFile
        let header: SparseHeader
        let gd: [UInt32]
        /// Guest bytes this extent covers (from the descriptor).
        let length: UInt64
        private let tables: Mutex<TableCache<[UInt32]>>

        static let structure = "VMDK grain table"

        init(file: HostFile, header: SparseHeader, length: UInt64) throws {
            self.file = file
            self.header = header
            self.length = length
            tables = Mutex(TableCache(tableBytes: Int(header.numGTEsPerGT) * 4))
            gd = try Self.readDirectory(file, header)
        }

        /// Opens a KDMV file: reads its header (or, for a VMware stream with the
        /// directory at the end, the footer) and its grain directory.
        static func open(_ file: HostFile, length: UInt64?) throws -> SparseExtent {
            var header = try SparseHeader(parsing: try file.bytes(at: HostOffset(0), count: 512, SparseHeader.structure))
            if header.gdOffset == VMDK.gdAtEnd {
                header = try footer(file)
            }
            let bytes = try Checked.multiply(header.capacity, VMDK.sectorSize, "capacity", structure: SparseHeader.structure)
            return try SparseExtent(file: file, header: header, length: length ?? bytes)
        }

        /// The stream-optimized footer: the last 1536 bytes are a FOOTER marker
        /// (type 3), a copy of the header with the real gdOffset, and an EOS marker.
        private static func footer(_ file: HostFile) throws -> SparseHeader {
            guard file.size >= 1536 + 512 else {
                throw file.error(.truncated, "VMDK stream footer", at: 0, "the stream is too short to hold its footer")
            }
            let at = file.size - 1536
            let marker = try file.reader(at: HostOffset(at), count: 512, "VMDK stream footer marker")
            let type = try marker.peekLittleEndian(UInt32.self, at: 12, "type")
            guard type == 3 else {
                throw file.error(.inconsistent, "VMDK stream footer marker", field: "type", at: at + 12,
                                 "header says the grain directory is at the end, but no footer marker (type 3) precedes the last 1024 bytes (found type \(type))")
            }
            let header = try SparseHeader(parsing: try file.bytes(at: HostOffset(at + 512), count: 512, "VMDK stream footer"),
                                          baseOffset: at + 512)
            guard header.gdOffset != VMDK.gdAtEnd else {
                throw file.error(.inconsistent, "VMDK stream footer", field: "gdOffset", at: at + 512 + 56,
                                 "the footer does not give the grain directory's offset either")
            }
            return header
        }

        private static func readDirectory(_ file: HostFile, _ header: SparseHeader) throws -> [UInt32] {
            let entries = header.gdEntries
            let bytes = try Checked.multiply(entries, 4, "gdEntries", structure: SparseHeader.structure)
            guard bytes <= UInt64(FormatLimits.maxTableBytes) else {
                throw file.error(.limitExceeded, SparseHeader.structure, field: "capacity", at: 12,
                                 "a grain directory of \(bytes) bytes exceeds the \(FormatLimits.maxTableBytes)-byte limit")
            }
            let at = try Checked.multiply(header.gdOffset, VMDK.sectorSize, "gdOffset", structure: SparseHeader.structure)
            let raw = try file.bytes(at: HostOffset(at), count: Int(bytes), "VMDK grain directory")
            return decodeLittleEndian32(raw)
        }

        /// The run at extent-local `offset`, extended over grains with the same meaning.
        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            let grainBytes = header.grainBytes
            let perTable = UInt64(header.numGTEsPerGT)
            var grain = offset / grainBytes
            let within = offset % grainBytes
            let gdIndex = grain / perTable
            let tableSpan = (perTable - grain % perTable) * grainBytes - within
            guard gdIndex < UInt64(gd.count), gd[Int(gdIndex)] != 0 else {
                return MappedRun(length: min(limit, tableSpan), source: .hole)
            }
            let table = try grainTable(Int(gdIndex))
            let first = try classify(table, gdIndex: Int(gdIndex), grain: grain, within: within)
            var length = grainBytes - within
            while length < limit, grain % perTable + 1 < perTable {
                grain += 1
                let next = try classify(table, gdIndex: Int(gdIndex), grain: grain, within: 0)
                switch (first, next) {
                case (.hole, .hole), (.zero, .zero): break
                case (.data(_, let a), .data(_, let b)) where a.bytes &+ length == b.bytes: break
                default: return MappedRun(length: min(length, limit), source: first)
                }
                length += grainBytes
            }
            return MappedRun(length: min(length, limit), source: first)
        }

        private func classify(_ table: [UInt32], gdIndex: Int, grain: UInt64, within: UInt64) throws -> RunSource {
            let index = Int(grain % UInt64(header.numGTEsPerGT))
            let entry = UInt64(table[index])
            if entry == 0 { return .hole }
            if entry == 1 && header.hasZeroedGrains { return .zero }
            let host = entry * VMDK.sectorSize
            guard host < file.size else {
                throw file.error(.outOfRange, Self.structure, field: "entry \(index)",
                                 at: UInt64(gd[gdIndex]) * VMDK.sectorSize + UInt64(index) * 4,
                                 "grain at sector \(entry) lies past the end of the \(file.size)-byte file")
            }
            if header.compressed {
                let unit = CompressedUnit(file: file, offset: HostOffset(host), storedLength: 0,
                                          unitSize: Int(header.grainBytes), guestOffset: grain * header.grainBytes)
                return .compressed(unit, within: Int(within))
            }
            return .data(file, HostOffset(host + within))
        }

        private func grainTable(_ gdIndex: Int) throws -> [UInt32] {
            let key = HostOffset(UInt64(gd[gdIndex]) * VMDK.sectorSize)
            return try tables.table(key) {
                decodeLittleEndian32(try file.bytes(at: key, count: Int(header.numGTEsPerGT) * 4, Self.structure))
            }
        }

        /// Inflates a grain marker `{u64 lba, u32 size, zlib data}` (technote
        /// §"Stream-Optimized Compressed Sparse Extents").
        func decompress(_ unit: CompressedUnit) throws -> [UInt8] {
            let s = "VMDK grain marker"
            var marker = try file.reader(at: unit.offset, count: 12, s)
            let lba = try marker.readLittleEndian(UInt64.self, "lba")
            let size = try marker.readLittleEndian(UInt32.self, "size")
            let expected = unit.guestOffset / VMDK.sectorSize
            guard lba == expected else {
                throw file.error(.inconsistent, s, field: "lba", at: unit.offset.bytes,
                                 "grain marker says sector \(lba), the grain table says \(expected)")
            }
            guard size > 0, UInt64(size) <= header.grainBytes * 2 + 4096 else {
                throw file.error(.outOfRange, s, field: "size", at: unit.offset.bytes + 8,
                                 "compressed grain of \(size) bytes is implausible for a \(header.grainBytes)-byte grain")
            }
            let data = try file.bytes(at: HostOffset(unit.offset.bytes + 12), count: Int(size), s)
            // The last grain of a disk that is not a grain multiple may inflate short.
            return try Codec.zlib.decompress(data, outputSize: unit.unitSize, allowShort: true, structure: s,
                                             file: file.path, offset: unit.offset.bytes)
        }
    }

    static func decodeLittleEndian32(_ raw: [UInt8]) -> [UInt32] {
        var table = [UInt32](repeating: 0, count: raw.count / 4)
        raw.withUnsafeBytes { bytes in
            for i in 0..<table.count {
                table[i] = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
            }
        }
        return table
    }
}
