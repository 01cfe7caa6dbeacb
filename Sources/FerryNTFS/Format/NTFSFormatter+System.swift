import FerryBinary

extension NTFSFormatter {
    /// The attributes of system files 0–10 beyond $STANDARD_INFORMATION and $FILE_NAME
    /// (the root and $Extend are directories, encoded by `addIndex`).
    func addSystemBody(to attributes: inout Attributes, _ file: File, layout: Layout) throws {
        let cs = UInt64(Self.clusterSize)
        switch file.record {
        case 0:  // $MFT: the records, and the bitmap of those in use
            try attributes.nonResident(.data, runs: file.runs, dataSize: UInt64(layout.mftRecords * Self.recordSize))
            try attributes.nonResident(.bitmap, runs: layout.mftBitmapRuns, dataSize: UInt64(align8((layout.mftRecords + 7) / 8)))
        case 1:  // $MFTMirr: the first four records
            try attributes.nonResident(.data, runs: file.runs, dataSize: cs)
        case 2:  // $LogFile: emptied (all 0xFF), as mkntfs and ntfsfix leave it
            try attributes.nonResident(.data, runs: file.runs, dataSize: layout.logClusters * cs)
        case 3:  // $Volume: label, NTFS 3.1 and clean flags, an empty $DATA
            attributes.resident(.volumeName, Self.utf16(label))
            var info = ByteWriter(capacity: 12)
            info.writeZeros(8)
            info.write(bytes: [3, 1])
            info.writeLittleEndian(UInt16(0))
            attributes.resident(.volumeInformation, info.bytes)
            attributes.resident(.data, [])
        case 4:  // $AttrDef
            try attributes.nonResident(.data, runs: file.runs, dataSize: UInt64(Self.attributeDefinitions().count))
        case 6:  // $Bitmap
            try attributes.nonResident(.data, runs: file.runs, dataSize: UInt64(layout.bitmapBytes))
        case 7:  // $Boot: the boot sector and the loader's 15 sectors after it
            try attributes.nonResident(.data, runs: file.runs, dataSize: 2 * cs)
        case 8:  // $BadClus: an empty $DATA and $Bad, a hole as large as the volume
            attributes.resident(.data, [])
            try attributes.nonResident(.data, name: "$Bad", runs: [DataRun(vcn: VCN(0), length: layout.totalClusters, lcn: nil)],
                                       dataSize: layout.totalClusters * cs)
        case 9:  // $Secure: no descriptors yet (every file has security id 0), empty $SDH and $SII
            attributes.resident(.data, name: "$SDS", [])
            let empty = indexNode(indexEntry(nil, subnode: nil, layout: layout), entriesOffset: 16, allocated: nil, hasSubnodes: false)
            attributes.resident(.indexRoot, name: "$SDH", indexRoot(type: 0, collation: 0x12, node: empty))
            attributes.resident(.indexRoot, name: "$SII", indexRoot(type: 0, collation: 0x10, node: empty))
        case 10:  // $UpCase
            try attributes.nonResident(.data, runs: file.runs, dataSize: 131072)
        default:
            throw FormatError(.inconsistent, structure: "NTFS format", field: "record \(file.record)", "is not a system file")
        }
    }

    /// The clusters system files fill beyond $MFT, $MFTMirr and $Boot (written by `build`).
    func systemContent(_ file: File, layout: Layout) throws -> [(UInt64, [UInt8])] {
        func at(_ runs: [DataRun], _ bytes: [UInt8]) -> [(UInt64, [UInt8])] {
            guard let lcn = runs.first?.lcn?.value else { return [] }
            let padded = Int(Layout.clusters(bytes.count)) * Self.clusterSize
            return [(lcn, bytes + [UInt8](repeating: 0, count: padded - bytes.count))]
        }
        switch file.record {
        case 0:
            var bits = [UInt8](repeating: 0, count: Self.clusterSize)
            let used = Array(0..<16) + layout.files.map(\.record).filter { $0 >= Self.firstUserRecord }
            for record in used { bits[record / 8] |= 1 << (record % 8) }
            return at(layout.mftBitmapRuns, bits)
        case 2: return at(file.runs, [UInt8](repeating: 0xFF, count: Int(layout.logClusters) * Self.clusterSize))
        case 4: return at(file.runs, Self.attributeDefinitions())
        case 6: return at(file.runs, layout.clusterBitmap())
        case 10: return at(file.runs, Self.upcaseTable().flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        default: return []
        }
    }

    /// $AttrDef for NTFS 3.1: 160 bytes per attribute type (name in 64 UTF-16 units, type,
    /// display rule, collation rule, flags, minimum and maximum size), then an empty entry.
    /// Flags: 0x02 indexable, 0x40 always resident, 0x80 always logged (non-resident allowed).
    static func attributeDefinitions() -> [UInt8] {
        let table: [(String, UInt32, UInt32, UInt32, UInt64, UInt64)] = [
            ("$STANDARD_INFORMATION", 0x10, 0, 0x40, 0x30, 0x48),
            ("$ATTRIBUTE_LIST", 0x20, 0, 0x80, 0, .max),
            ("$FILE_NAME", 0x30, 1, 0x42, 0x44, 0x242),
            ("$OBJECT_ID", 0x40, 0, 0x40, 0, 0x100),
            ("$SECURITY_DESCRIPTOR", 0x50, 0, 0x80, 0, .max),
            ("$VOLUME_NAME", 0x60, 0, 0x40, 2, 0x100),
            ("$VOLUME_INFORMATION", 0x70, 0, 0x40, 0xC, 0xC),
            ("$DATA", 0x80, 0, 0, 0, .max),
            ("$INDEX_ROOT", 0x90, 0, 0x40, 0, .max),
            ("$INDEX_ALLOCATION", 0xA0, 0, 0x80, 0, .max),
            ("$BITMAP", 0xB0, 0, 0x80, 0, .max),
            ("$REPARSE_POINT", 0xC0, 0, 0x80, 0, 0x4000),
            ("$EA_INFORMATION", 0xD0, 0, 0x40, 8, 8),
            ("$EA", 0xE0, 0, 0, 0, 0x10000),
            ("$LOGGED_UTILITY_STREAM", 0x100, 0, 0x80, 0, 0x10000),
        ]
        var w = ByteWriter(capacity: 160 * 16)
        for (name, type, collation, flags, minimum, maximum) in table {
            let units = utf16(name)
            w.write(bytes: units)
            w.writeZeros(128 - units.count)
            w.writeLittleEndian(type)
            w.writeLittleEndian(UInt32(0))  // display rule
            w.writeLittleEndian(collation)
            w.writeLittleEndian(flags)
            w.writeLittleEndian(minimum)
            w.writeLittleEndian(maximum)
        }
        w.writeZeros(160)
        return w.bytes
    }

    /// $UpCase: each UTF-16 unit's upper case where it is a single unit, else the unit itself
    /// (surrogates map to themselves).
    static func upcaseTable() -> [UInt16] { upcase }

    private static let upcase: [UInt16] = (0..<65536).map { value in
            let unit = UInt16(value)
            guard let scalar = Unicode.Scalar(unit) else { return unit }
            let upper = String(Character(scalar)).uppercased().utf16
            return upper.count == 1 ? upper[upper.startIndex] : unit
    }
}
