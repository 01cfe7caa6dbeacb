import FerryBinary

/// One entry of a directory index ($I30; formats §6.5).
///
/// ```
///  0 file reference u64   8 entry length u16   10 key length u16   12 flags u32 (0x1 sub-node, 0x2 last)
///  16 key = $FILE_NAME value: 0 parent ref, 64 name length (chars), 65 namespace, 66 name (UTF-16LE)
///  entry length − 8: sub-node VCN u64 (when flags & 0x1)
/// ```
struct IndexEntry: Sendable {
    var reference: UInt64
    var isLast: Bool
    var subnodeVCN: VCN?
    var name: [UInt16]
    var namespace: UInt8

    /// Parses the entries of one index node whose header starts at `header` in `bytes`.
    static func parseNode(_ bytes: [UInt8], header: Int, structure: String, offset: UInt64) throws -> [IndexEntry] {
        guard let entriesOffset = bytes.littleEndian(UInt32.self, at: header).map(Int.init),
            let inUse = bytes.littleEndian(UInt32.self, at: header + 4).map(Int.init)
        else { throw FormatError(.truncated, structure: structure, offset: offset, "no index node header") }
        let start = header + entriesOffset, end = header + inUse
        guard entriesOffset >= 16, start <= end, end <= bytes.count else {
            throw FormatError(.outOfRange, structure: structure, field: "index node header", offset: offset + UInt64(header),
                "entries \(entriesOffset)…\(inUse) do not fit \(bytes.count) bytes")
        }
        var entries: [IndexEntry] = []
        var position = start
        while position + 16 <= end {
            let length = Int(bytes.littleEndian(UInt16.self, at: position + 8) ?? 0)
            let keyLength = Int(bytes.littleEndian(UInt16.self, at: position + 10) ?? 0)
            let flags = bytes.littleEndian(UInt32.self, at: position + 12) ?? 0
            guard length >= 16, length % 8 == 0, position + length <= end else {
                throw FormatError(.outOfRange, structure: structure, field: "index entry length", offset: offset + UInt64(position),
                    "entry length \(length) does not fit the node")
            }
            var entry = IndexEntry(
                reference: bytes.littleEndian(UInt64.self, at: position) ?? 0, isLast: flags & 2 != 0, subnodeVCN: nil, name: [],
                namespace: 0)
            if flags & 1 != 0 {
                guard length >= 24 else {
                    throw FormatError(.outOfRange, structure: structure, field: "index entry", offset: offset + UInt64(position), "too short for a sub-node VCN")
                }
                entry.subnodeVCN = bytes.littleEndian(UInt64.self, at: position + length - 8).map { VCN($0) }
            }
            if !entry.isLast {
                guard keyLength >= 66, 16 + keyLength <= length else {
                    throw FormatError(.outOfRange, structure: structure, field: "index key length", offset: offset + UInt64(position),
                        "key of \(keyLength) bytes in a \(length)-byte entry")
                }
                let nameLength = Int(bytes[position + 16 + 64])
                entry.namespace = bytes[position + 16 + 65]
                guard 66 + nameLength * 2 <= keyLength else {
                    throw FormatError(.outOfRange, structure: structure, field: "file name length", offset: offset + UInt64(position),
                        "name of \(nameLength) characters in a \(keyLength)-byte key")
                }
                let nameStart = position + 16 + 66
                entry.name = NTFSName.units(Array(bytes[nameStart..<nameStart + nameLength * 2]))
            }
            entries.append(entry)
            if entry.isLast { break }
            position += length
        }
        return entries
    }
}

extension NTFSVolume {
    /// Index B-trees deeper than this are treated as corrupt (real ones are 3–4 deep).
    public static let maxIndexDepth = 32

    /// The volume's $UpCase table (record 10), or an ASCII-only table when it cannot be read.
    func upcase() -> [UInt16] {
        if let table = upcaseTable.withLock({ $0 }) { return table }
        var table = (0..<65536).map { UInt16($0) }
        for c in UInt16(0x61)...0x7A { table[Int(c)] = c - 0x20 }
        if let record = try? record(10), let stream = try? stream(of: record, type: .data), stream.size == 131072,
            let bytes = try? stream.read(at: 0, count: 131072)
        {
            table = NTFSName.units(bytes)
        }
        upcaseTable.withLock { $0 = table }
        return table
    }

    /// Finds `name` in the directory whose base record is `directory`, case-insensitively via
    /// $UpCase; an exact (case-sensitive) match wins over others. Returns the file reference.
    public func lookup(_ name: String, in directory: MFTRecord) throws -> UInt64? {
        let table = upcase()
        let target = Array(name.utf16)
        let folded = target.map { table[Int($0)] }
        func compare(_ key: [UInt16]) -> Int {
            for (a, b) in zip(folded, key) {
                let ub = table[Int(b)]
                if a != ub { return a < ub ? -1 : 1 }
            }
            return folded.count == key.count ? 0 : (folded.count < key.count ? -1 : 1)
        }
        let root = try stream(of: directory, type: .indexRoot, name: "$I30")
        let rootBytes = try root.readAll(limit: 1 << 16)
        guard let blockSize = rootBytes.littleEndian(UInt32.self, at: 8).map(Int.init), blockSize >= 512, blockSize <= 65536 else {
            throw FormatError(.outOfRange, structure: "$INDEX_ROOT", field: "index block size", offset: UInt64(directory.number), "not within 512…65536")
        }
        var entries = try IndexEntry.parseNode(rootBytes, header: 16, structure: "$INDEX_ROOT", offset: 0)
        var allocation: NTFSStream?
        var visited: Set<VCN> = []
        for _ in 0..<Self.maxIndexDepth {
            var descend: VCN?
            var candidates: [IndexEntry] = []
            for entry in entries {
                if entry.isLast { descend = entry.subnodeVCN; break }
                let order = compare(entry.name)
                if order == 0 { candidates.append(entry); continue }
                if !candidates.isEmpty { break }
                if order < 0 { descend = entry.subnodeVCN; break }
            }
            if !candidates.isEmpty {
                let exact = candidates.first { $0.name == target } ?? candidates.first { $0.namespace != 0 } ?? candidates[0]
                return exact.reference
            }
            guard let vcn = descend else { return nil }
            guard visited.insert(vcn).inserted else {
                throw FormatError(.cycle, structure: "$INDEX_ALLOCATION", "index sub-node \(vcn) is visited twice")
            }
            if allocation == nil { allocation = try stream(of: directory, type: .indexAllocation, name: "$I30") }
            guard let allocation else { return nil }
            let unit = UInt64(blockSize >= clusterSize ? clusterSize : 512)
            let position = try Checked.multiply(vcn.value, unit, "sub-node VCN", structure: "$INDEX_ALLOCATION")
            var block = try allocation.read(at: position, count: blockSize)
            guard block.starts(with: Array("INDX".utf8)) else {
                throw FormatError(.badMagic, structure: "INDX block", offset: position, "expected \"INDX\"")
            }
            try FixUp.apply(&block, structure: "INDX block", offset: position)
            entries = try IndexEntry.parseNode(block, header: 24, structure: "INDX block", offset: position)
        }
        throw FormatError(.limitExceeded, structure: "$I30 index", "deeper than \(Self.maxIndexDepth) levels")
    }

    /// The base record of the file at `path` ("/Windows/System32/config/SYSTEM" or with
    /// backslashes), starting at the root directory (record 5); nil when a component is missing.
    public func file(at path: String) throws -> MFTRecord? {
        var current = try record(5)
        for component in path.split(whereSeparator: { $0 == "/" || $0 == "\\" }) {
            guard current.isDirectory, let reference = try lookup(String(component), in: current) else { return nil }
            let number = reference & 0xFFFF_FFFF_FFFF
            let next = try record(number)
            let sequence = UInt16(truncatingIfNeeded: reference >> 48)
            guard next.inUse, sequence == 0 || next.sequence == sequence else {
                throw FormatError(.inconsistent, structure: "MFT record \(number)", field: "sequence number",
                    "a stale directory entry for \"\(component)\" (sequence \(sequence) vs \(next.sequence))")
            }
            current = next
        }
        return current
    }

    /// The unnamed $DATA stream of the file at `path`, or nil when it does not exist.
    public func open(_ path: String) throws -> NTFSStream? {
        guard let record = try file(at: path), !record.isDirectory else { return nil }
        return try stream(of: record, type: .data)
    }
}
