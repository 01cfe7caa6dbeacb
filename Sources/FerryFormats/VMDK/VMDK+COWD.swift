import FerryBinary
import Synchronization

extension VMDK {
    /// An ESXi vmfsSparse ("COWD", `-delta.vmdk`) redo log (libyal VMDK notes):
    /// u32 fields, grain directory of GTs holding 4096 u32 sector numbers each.
    ///
    /// | Off | Size | Field |
    /// |---:|---:|---|
    /// | 0 | 4 | magic "COWD" |
    /// | 4 | 4 | version (1) |
    /// | 8 | 4 | flags |
    /// | 12 | 4 | capacity (sectors) |
    /// | 16 | 4 | grain size (sectors) |
    /// | 20 | 4 | GD offset (sectors) |
    /// | 24 | 4 | GD entries |
    /// | 28 | 4 | next free sector |
    final class COWDExtent: Sendable {
        static let structure = "VMDK COWD header"
        static let entriesPerTable: UInt64 = 4096
        let file: HostFile
        let grainBytes: UInt64
        let capacity: UInt64
        let gd: [UInt32]
        private let tables: Mutex<TableCache<[UInt32]>>

        init(file: HostFile) throws {
            self.file = file
            var r = try file.reader(at: HostOffset(0), count: 2048, Self.structure)
            guard try r.readLittleEndian(UInt32.self, "magic") == VMDK.cowdMagic else {
                throw file.error(.badMagic, Self.structure, field: "magic", at: 0, "expected COWD")
            }
            let version = try r.readLittleEndian(UInt32.self, "version")
            guard version == 1 else {
                throw file.error(.unsupportedVersion, Self.structure, field: "version", at: 4, "COWD version \(version) is not 1")
            }
            _ = try r.readLittleEndian(UInt32.self, "flags")
            capacity = UInt64(try r.readLittleEndian(UInt32.self, "capacity")) * VMDK.sectorSize
            let grain = UInt64(try r.readLittleEndian(UInt32.self, "grainSize"))
            guard grain >= 1, grain <= 1 << 21, grain & (grain - 1) == 0 else {
                throw file.error(.outOfRange, Self.structure, field: "grainSize", at: 16, "grain size \(grain) sectors is invalid")
            }
            grainBytes = grain * VMDK.sectorSize
            let gdOffset = UInt64(try r.readLittleEndian(UInt32.self, "gdOffset")) * VMDK.sectorSize
            let gdEntries = UInt64(try r.readLittleEndian(UInt32.self, "gdEntries"))
            let span = Self.entriesPerTable * grainBytes
            guard gdEntries * span >= capacity, gdEntries * 4 <= UInt64(FormatLimits.maxTableBytes) else {
                throw file.error(.inconsistent, Self.structure, field: "gdEntries", at: 24,
                                 "\(gdEntries) grain directory entries do not fit a \(capacity)-byte disk")
            }
            let dirty = try r.peekLittleEndian(UInt8.self, at: 1648, "dirty")
            guard dirty == 0 else {
                throw file.error(.unsupportedFeature, Self.structure, field: "dirty", at: 1648,
                                 "the redo log is dirty (the VM is running or crashed); consolidate the snapshot on ESXi first")
            }
            gd = decodeLittleEndian32(try file.bytes(at: HostOffset(gdOffset), count: Int(gdEntries * 4), "VMDK COWD grain directory"))
            tables = Mutex(TableCache(tableBytes: Int(Self.entriesPerTable) * 4))
        }

        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            let grain = offset / grainBytes
            let within = offset % grainBytes
            let gdIndex = Int(grain / Self.entriesPerTable)
            guard gdIndex < gd.count, gd[gdIndex] != 0 else {
                let span = (Self.entriesPerTable - grain % Self.entriesPerTable) * grainBytes - within
                return MappedRun(length: min(limit, span), source: .hole)
            }
            let key = HostOffset(UInt64(gd[gdIndex]) * VMDK.sectorSize)
            let table = try tables.table(key) {
                decodeLittleEndian32(try file.bytes(at: key, count: Int(Self.entriesPerTable) * 4, "VMDK COWD grain table"))
            }
            let entry = UInt64(table[Int(grain % Self.entriesPerTable)])
            let length = min(limit, grainBytes - within)
            if entry == 0 { return MappedRun(length: length, source: .hole) }
            let host = entry * VMDK.sectorSize
            guard host < file.size else {
                throw file.error(.outOfRange, "VMDK COWD grain table", at: key.bytes,
                                 "grain at sector \(entry) lies past the end of the \(file.size)-byte file")
            }
            return MappedRun(length: length, source: .data(file, HostOffset(host + within)))
        }
    }
}
