import FerryBinary
import Synchronization

extension VMDK {
    /// An ESXi seSparse extent (`-sesparse.vmdk`, VMFS6 snapshots). VMware does not
    /// document it; the layout follows qemu `block/vmdk.c` (seSparse support, 2019).
    ///
    /// ```
    ///  sector 0: const header, all u64 LE: magic 0xcafebabe @0, version 0x200000001 @8,
    ///            capacity @16, grain_size (8) @24, grain_table_size (64) @32, flags (0) @40,
    ///            reserved ×4, then {offset, size} in sectors for: volatile header @80,
    ///            journal header @96, journal @112, grain dir @128, grain tables @144,
    ///            free bitmap @160, backmap @176, grains @192
    ///  volatile header: magic 0xcafecafe @0, free_gt_number @8, next_txn @16, replay_journal @24
    ///  GD entry:  0 = unallocated; top 32 bits 0x10000000 = allocated, low 32 bits = GT index
    ///  GT entry:  top nibble 0 unallocated (entry must be 0), 1 unmapped (zeros), 2 zero,
    ///             3 allocated: cluster = bits 48-59 | bits 0-47 << 12
    /// ```
    final class SESparseExtent: Sendable {
        static let structure = "VMDK seSparse header"
        static let grainBytes: UInt64 = 8 * 512
        static let tableEntries: UInt64 = 64 * 512 / 8
        let file: HostFile
        let capacity: UInt64
        let gd: [UInt64]
        let gdOffset: UInt64
        let tablesOffset: UInt64
        let grainsOffset: UInt64
        private let tables: Mutex<TableCache<[UInt64]>>

        init(file: HostFile) throws {
            self.file = file
            let s = Self.structure
            let h = try file.reader(at: HostOffset(0), count: 512, s)
            func field(_ at: Int, _ name: String) throws -> UInt64 { try h.peekLittleEndian(UInt64.self, at: at, name) }
            guard try field(0, "magic") == 0xcafe_babe else {
                throw file.error(.badMagic, s, field: "magic", at: 0, "expected 0xcafebabe")
            }
            let version = try field(8, "version")
            guard version == 0x2_0000_0001 else {
                throw file.error(.unsupportedVersion, s, field: "version", at: 8, "version 0x\(String(version, radix: 16)) is not 0x200000001")
            }
            guard try field(24, "grain_size") == 8, try field(32, "grain_table_size") == 64, try field(40, "flags") == 0 else {
                throw file.error(.unsupportedFeature, s, field: "grain_size", at: 24,
                                 "only 4 KiB grains, 64-sector grain tables and no flags are known")
            }
            let sectors = try field(16, "capacity")
            capacity = try Checked.multiply(sectors, 512, "capacity", structure: s)
            let volatileAt = try Checked.multiply(try field(80, "volatile_header_offset"), 512, "volatile_header_offset", structure: s)
            let volatile = try file.reader(at: HostOffset(volatileAt), count: 512, "VMDK seSparse volatile header")
            guard try volatile.peekLittleEndian(UInt64.self, at: 0, "magic") == 0xcafe_cafe else {
                throw file.error(.badMagic, "VMDK seSparse volatile header", field: "magic", at: volatileAt, "expected 0xcafecafe")
            }
            guard try volatile.peekLittleEndian(UInt64.self, at: 24, "replay_journal") == 0 else {
                throw file.error(.unsupportedFeature, "VMDK seSparse volatile header", field: "replay_journal", at: volatileAt + 24,
                                 "the journal must be replayed (the VM is running or crashed); consolidate the snapshot on ESXi first")
            }
            let gdAt = try Checked.multiply(try field(128, "grain_dir_offset"), 512, "grain_dir_offset", structure: s)
            let gdBytes = try Checked.multiply(try field(136, "grain_dir_size"), 512, "grain_dir_size", structure: s)
            let span = Self.tableEntries * Self.grainBytes
            let needed = (capacity / span + (capacity % span == 0 ? 0 : 1)) * 8
            guard gdBytes >= needed, needed <= UInt64(FormatLimits.maxTableBytes) else {
                throw file.error(.inconsistent, s, field: "grain_dir_size", at: 136,
                                 "a grain directory of \(gdBytes) bytes cannot map \(capacity) bytes within the table limit")
            }
            tablesOffset = try Checked.multiply(try field(144, "grain_tables_offset"), 512, "grain_tables_offset", structure: s)
            grainsOffset = try Checked.multiply(try field(192, "grains_offset"), 512, "grains_offset", structure: s)
            gdOffset = gdAt
            let raw = try file.bytes(at: HostOffset(gdAt), count: Int(needed), "VMDK seSparse grain directory")
            gd = (0..<Int(needed / 8)).map { raw.littleEndian(UInt64.self, at: $0 * 8) ?? 0 }
            tables = Mutex(TableCache(tableBytes: Int(Self.tableEntries) * 8))
        }

        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            let grain = offset / Self.grainBytes
            let within = offset % Self.grainBytes
            let gdIndex = Int(grain / Self.tableEntries)
            let length = min(limit, Self.grainBytes - within)
            guard gdIndex < gd.count, gd[gdIndex] != 0 else {
                let span = (Self.tableEntries - grain % Self.tableEntries) * Self.grainBytes - within
                return MappedRun(length: min(limit, span), source: .hole)
            }
            let gde = gd[gdIndex]
            guard gde >> 32 == 0x1000_0000 else {
                throw file.error(.inconsistent, "VMDK seSparse grain directory", field: "entry \(gdIndex)",
                                 at: gdOffset + UInt64(gdIndex) * 8,
                                 "grain directory entry 0x\(String(gde, radix: 16)) is neither 0 nor allocated")
            }
            let tableAt = try Checked.add(tablesOffset, (gde & 0xffff_ffff) * Self.tableEntries * 8, "grain table", structure: Self.structure)
            let table = try tables.table(HostOffset(tableAt)) {
                let raw = try file.bytes(at: HostOffset(tableAt), count: Int(Self.tableEntries) * 8, "VMDK seSparse grain table")
                return (0..<Int(Self.tableEntries)).map { raw.littleEndian(UInt64.self, at: $0 * 8) ?? 0 }
            }
            let index = Int(grain % Self.tableEntries)
            let e = table[index]
            func corrupt(_ detail: String) -> FormatError {
                file.error(.inconsistent, "VMDK seSparse grain table", field: "entry \(index)", at: tableAt + UInt64(index) * 8, detail)
            }
            switch e >> 60 {
            case 0:
                guard e == 0 else { throw corrupt("unallocated entry 0x\(String(e, radix: 16)) has stray bits") }
                return MappedRun(length: length, source: .hole)
            case 1, 2:
                return MappedRun(length: length, source: .zero)
            case 3:
                let cluster = ((e & 0x0fff_0000_0000_0000) >> 48) | ((e & 0x0000_ffff_ffff_ffff) << 12)
                let host = try Checked.add(grainsOffset, try Checked.multiply(cluster, Self.grainBytes, "cluster", structure: Self.structure),
                                           "cluster", structure: Self.structure)
                guard host < file.size else { throw corrupt("grain at \(host) lies past the end of the \(file.size)-byte file") }
                return MappedRun(length: length, source: .data(file, HostOffset(host + within)))
            default:
                throw corrupt("unknown grain table entry type \(e >> 60)")
            }
        }
    }
}
