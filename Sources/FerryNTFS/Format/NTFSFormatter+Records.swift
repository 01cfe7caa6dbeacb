import FerryBinary

extension NTFSFormatter {
    /// Attribute instance numbers, in the order a record's attributes are added.
    struct Attributes {
        var encoded: [[UInt8]] = []

        /// A resident attribute (formats §6.4): 24-byte header, the name, the value 8-aligned.
        mutating func resident(_ type: AttributeType, name: String = "", _ value: [UInt8], indexed: Bool = false) {
            append(type.rawValue, name: name, resident: value, indexed: indexed)
        }

        mutating func append(_ type: UInt32, name: String = "", resident value: [UInt8], indexed: Bool = false) {
            let nameBytes = utf16(name)
            let valueOffset = align8(24 + nameBytes.count)
            var w = ByteWriter(capacity: align8(valueOffset + value.count))
            w.writeLittleEndian(type)
            w.writeLittleEndian(UInt32(align8(valueOffset + value.count)))
            w.write(0)  // resident
            w.write(UInt8(name.utf16.count))
            w.writeLittleEndian(UInt16(24))
            w.writeLittleEndian(UInt16(0))  // flags
            w.writeLittleEndian(UInt16(encoded.count))  // instance
            w.writeLittleEndian(UInt32(value.count))
            w.writeLittleEndian(UInt16(valueOffset))
            w.write(indexed ? 1 : 0)
            w.write(0)
            w.write(bytes: nameBytes)
            w.writeZeros(valueOffset - w.bytes.count)
            w.write(bytes: value)
            w.writeZeros(align8(w.bytes.count) - w.bytes.count)
            encoded.append(w.bytes)
        }

        /// A non-resident attribute: 64-byte header, the name, the mapping pairs 8-aligned.
        mutating func nonResident(_ type: AttributeType, name: String = "", runs: [DataRun], dataSize: UInt64,
                                  initialized: UInt64? = nil) throws {
            let nameBytes = utf16(name)
            let runsOffset = align8(64 + nameBytes.count)
            let pairs = try DataRun.encode(runs)
            let clusters = runs.reduce(0) { $0 + $1.length }
            var w = ByteWriter(capacity: align8(runsOffset + pairs.count))
            w.writeLittleEndian(type.rawValue)
            w.writeLittleEndian(UInt32(align8(runsOffset + pairs.count)))
            w.write(1)  // non-resident
            w.write(UInt8(name.utf16.count))
            w.writeLittleEndian(UInt16(64))
            w.writeLittleEndian(UInt16(0))
            w.writeLittleEndian(UInt16(encoded.count))
            w.writeLittleEndian(UInt64(0))  // lowest VCN
            w.writeLittleEndian(clusters == 0 ? UInt64.max : clusters - 1)  // highest VCN (−1 when empty)
            w.writeLittleEndian(UInt16(runsOffset))
            w.writeZeros(6)  // compression unit, padding
            w.writeLittleEndian(clusters * UInt64(NTFSFormatter.clusterSize))
            w.writeLittleEndian(dataSize)
            w.writeLittleEndian(initialized ?? dataSize)
            w.write(bytes: nameBytes)
            w.writeZeros(runsOffset - w.bytes.count)
            w.write(bytes: pairs)
            w.writeZeros(align8(w.bytes.count) - w.bytes.count)
            encoded.append(w.bytes)
        }
    }

    static func utf16(_ text: String) -> [UInt8] { text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    /// An MFT record (formats §6.3): header, update sequence array at 0x30, attributes from
    /// 0x38, the end marker, then the fix-ups applied for the disk. Throws when it overflows.
    func record(_ number: Int, sequence: UInt16, flags: UInt16, _ attributes: Attributes) throws -> [UInt8] {
        let body = attributes.encoded.flatMap { $0 }
        let used = 0x38 + body.count + 8
        guard used <= Self.recordSize else {
            throw FormatError(.limitExceeded, structure: "NTFS format", field: "MFT record \(number)", "needs \(used) of \(Self.recordSize) bytes")
        }
        var w = ByteWriter(capacity: Self.recordSize)
        w.write(bytes: Array("FILE".utf8))
        w.writeLittleEndian(UInt16(0x30))  // update sequence array offset
        w.writeLittleEndian(UInt16(Self.recordSize / FixUp.stride + 1))
        w.writeLittleEndian(UInt64(0))  // $LogFile sequence number
        w.writeLittleEndian(sequence)
        w.writeLittleEndian(UInt16(flags & 1 != 0 ? 1 : 0))  // hard links
        w.writeLittleEndian(UInt16(0x38))  // first attribute
        w.writeLittleEndian(flags)
        w.writeLittleEndian(UInt32(used))
        w.writeLittleEndian(UInt32(Self.recordSize))
        w.writeLittleEndian(UInt64(0))  // base record
        w.writeLittleEndian(UInt16(attributes.encoded.count))  // next attribute id
        w.writeZeros(2)
        w.writeLittleEndian(UInt32(number))
        w.writeZeros(0x38 - w.bytes.count)  // the update sequence array is filled by `protect`
        w.write(bytes: body)
        w.writeLittleEndian(UInt32(0xFFFF_FFFF))
        w.writeZeros(Self.recordSize - w.bytes.count)
        return try RawMFTRecord(number: UInt64(number), bytes: w.bytes, pieces: []).protected()
    }

    /// A record nobody uses yet: a valid header and no attributes (as mkntfs leaves 16–23).
    func unusedRecord(_ number: Int) throws -> [UInt8] {
        try record(number, sequence: number < 16 ? UInt16(max(number, 1)) : 1, flags: 0, Attributes())
    }

    func sequence(of record: Int) -> UInt16 { record < 16 ? UInt16(max(record, 1)) : 1 }

    /// A file reference: the record number and, in the top 16 bits, its sequence number.
    func reference(_ record: Int) -> UInt64 { UInt64(sequence(of: record)) << 48 | UInt64(record) }

    /// $STANDARD_INFORMATION (NTFS 3.x, 72 bytes): four times, attributes, then zeros
    /// (versions, class, owner, security id 0, quota, USN).
    func standardInformation(_ file: File) -> [UInt8] {
        var w = ByteWriter(capacity: 72)
        for _ in 0..<4 { w.writeLittleEndian(time) }
        w.writeLittleEndian(file.attributes)
        w.writeZeros(72 - w.bytes.count)
        return w.bytes
    }

    /// $FILE_NAME, also the key of the file's entry in its directory's index: parent
    /// reference, four times, allocated and data size, attributes (0x10000000 for a directory:
    /// it has an $I30 index), name length, namespace (3, Win32 and DOS, for an 8.3 name; 1,
    /// Win32, otherwise), the name.
    func fileName(_ file: File) -> [UInt8] {
        var w = ByteWriter(capacity: 66 + 2 * file.name.utf16.count)
        w.writeLittleEndian(reference(file.parent))
        for _ in 0..<4 { w.writeLittleEndian(time) }
        w.writeLittleEndian(Layout.clusters(Int(file.dataSize)) * UInt64(Self.clusterSize))
        w.writeLittleEndian(file.dataSize)
        w.writeLittleEndian(file.attributes | (file.isDirectory ? 0x1000_0000 : 0))
        w.writeZeros(4)  // EA size / reparse tag
        w.write(UInt8(file.name.utf16.count))
        w.write(Self.isShortName(file.name) ? 3 : 1)
        w.write(bytes: Self.utf16(file.name))
        return w.bytes
    }

    /// True for a name DOS can hold as it is: 1–8 characters, an optional 1–3 character
    /// extension, upper-case letters, digits and DOS's punctuation.
    static func isShortName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let base = parts.first, (1...8).contains(base.count) else { return false }
        if parts.count == 2, !(1...3).contains(parts[1].count) { return false }
        return name.unicodeScalars.allSatisfy { c in
            (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "._$~!#%&-{}()@'`^".unicodeScalars.contains(c)
        }
    }

    /// The record of `file`: the common attributes, then its body's.
    func encodeRecord(_ file: File, layout: Layout) throws -> [UInt8] {
        var attributes = Attributes()
        attributes.resident(.standardInformation, standardInformation(file))
        attributes.resident(.fileName, fileName(file), indexed: true)
        switch file.body {
        case .data(let bytes):
            try attributes.nonResident(.data, runs: file.runs, dataSize: UInt64(bytes.count))
        case .directory:
            try addIndex(to: &attributes, file, layout: layout)
        case .system:
            try addSystemBody(to: &attributes, file, layout: layout)
        }
        return try record(file.record, sequence: sequence(of: file.record), flags: file.isDirectory ? 3 : 1, attributes)
    }

    /// The clusters a file's content fills: its data, or its index blocks.
    func contentClusters(_ file: File, layout: Layout) throws -> [(UInt64, [UInt8])] {
        if case .system = file.body { return try systemContent(file, layout: layout) }
        guard let lcn = file.runs.first?.lcn?.value else { return [] }
        switch file.body {
        case .data(let bytes):
            return bytes.isEmpty ? [] : [(lcn, bytes + [UInt8](repeating: 0, count: Int(Layout.clusters(bytes.count)) * Self.clusterSize - bytes.count))]
        case .directory:
            return try (0..<Self.indexBlockCount(file)).map { vcn in
                (lcn + UInt64(vcn), try indexBlock(vcn: vcn, of: file, layout: layout))
            }
        case .system:
            return []
        }
    }
}

func align8(_ n: Int) -> Int { (n + 7) & ~7 }
