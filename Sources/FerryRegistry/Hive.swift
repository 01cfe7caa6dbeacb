import FerryBinary

/// A read-only view of a registry hive (regf). Cells are read on demand from the storage, so
/// a lookup costs a few cells, not the whole file. Every offset taken from the hive is
/// checked to lie inside the hive-bins area before it is followed.
public final class Hive: Sendable {
    /// Limits taken from hivex (`HIVEX_MAX_SUBKEYS`, `HIVEX_MAX_VALUES`, `HIVEX_MAX_VALUE_LEN`).
    public static let maxSubkeys = 70_000
    public static let maxValues = 110_000
    public static let maxValueLength = 8_000_000
    /// Cells larger than this are refused (hivex writes single data cells up to 8 MB).
    public static let maxCellSize: UInt64 = 16 << 20
    /// A path deeper than this is refused.
    public static let maxPathDepth = 512

    public let storage: any HiveStorage
    public let baseBlock: BaseBlock
    /// The stored checksum matches the base block.
    public let checksumValid: Bool

    public init(storage: any HiveStorage) throws {
        self.storage = storage
        guard storage.size >= UInt64(BaseBlock.size) else {
            throw FormatError(.truncated, structure: "regf base block", "the file has only \(storage.size) bytes")
        }
        let bytes = try storage.read(at: 0, count: BaseBlock.size)
        baseBlock = try BaseBlock(parsing: bytes)
        checksumValid = baseBlock.checksumValid(in: bytes)
        let end = UInt64(BaseBlock.size) + UInt64(baseBlock.hiveBinsDataSize)
        guard end <= storage.size else {
            throw FormatError(
                .outOfRange, structure: "regf base block", field: "hive bins data size", offset: 40,
                "hive bins end at \(end) but the file has \(storage.size) bytes")
        }
        _ = try HiveBinHeader(parsing: storage.read(at: 4096, count: HiveBinHeader.size), fileOffset: 4096)
    }

    public convenience init(bytes: [UInt8]) throws { try self.init(storage: InMemoryHive(bytes)) }

    /// Dirty: a bad checksum or unequal sequence numbers mean the .LOG files hold newer data.
    public var isDirty: Bool { !checksumValid || baseBlock.sequenceMismatch }

    // MARK: Cells

    /// The data of the allocated cell at `index`, without its size field.
    public func cell(at index: CellIndex, _ what: String) throws -> [UInt8] {
        let offset = index.value
        let binsSize = UInt64(baseBlock.hiveBinsDataSize)
        guard !index.isNone, offset % 8 == 0, UInt64(offset) + 8 <= binsSize, offset >= UInt32(HiveBinHeader.size) else {
            throw FormatError(
                .outOfRange, structure: what, field: "cell offset", offset: index.fileOffset,
                "cell offset \(offset) is not an aligned offset inside the \(binsSize)-byte hive bins")
        }
        let fileOffset = index.fileOffset
        let header = try storage.read(at: fileOffset, count: 4)
        let raw = Int32(bitPattern: header.littleEndian(UInt32.self, at: 0) ?? 0)
        guard raw < 0 else {
            throw FormatError(.inconsistent, structure: what, field: "cell size", offset: fileOffset, "points at a free cell (size \(raw))")
        }
        let size = UInt64(raw.magnitude)
        guard size >= 8, size <= Self.maxCellSize, UInt64(offset) + size <= binsSize else {
            throw FormatError(
                .outOfRange, structure: what, field: "cell size", offset: fileOffset,
                "a \(size)-byte cell at \(offset) does not fit in the hive bins")
        }
        return try storage.read(at: fileOffset + 4, count: Int(size) - 4)
    }

    public func key(atCell offset: CellIndex) throws -> KeyNode {
        try KeyNode(parsing: cell(at: offset, "nk cell"), cellOffset: offset)
    }

    public func rootKey() throws -> KeyNode { try key(atCell: baseBlock.rootCellOffset) }

    // MARK: Keys

    /// The leaf lists (lf/lh/li) holding `key`'s subkeys, following `ri` indirection one level
    /// (an `ri` may not hold another `ri`).
    public func subkeyLeaves(of key: KeyNode) throws -> [SubkeyList] {
        guard key.subkeyCount > 0, key.subkeyList != CellIndex.none else { return [] }
        guard key.subkeyCount <= Self.maxSubkeys else {
            throw FormatError(.limitExceeded, structure: "nk cell", field: "number of subkeys", offset: key.cellOffset.fileOffset,
                "\(key.subkeyCount) subkeys exceed the limit of \(Self.maxSubkeys)")
        }
        let top = try SubkeyList(parsing: cell(at: key.subkeyList, "subkey list"), cellOffset: key.subkeyList)
        guard top.kind == .ri else { return [top] }
        var leaves: [SubkeyList] = []
        var total = 0
        for leafOffset in top.offsets {
            let leaf = try SubkeyList(parsing: cell(at: leafOffset, "subkey list"), cellOffset: leafOffset)
            guard leaf.kind != .ri else {
                throw FormatError(.inconsistent, structure: "ri list", offset: leafOffset.fileOffset, "an ri list points at another ri list")
            }
            total += leaf.offsets.count
            guard total <= Self.maxSubkeys else {
                throw FormatError(.limitExceeded, structure: "ri list", offset: key.subkeyList.fileOffset, "more than \(Self.maxSubkeys) subkeys")
            }
            leaves.append(leaf)
        }
        return leaves
    }

    /// All subkeys of `key`.
    public func subkeys(of key: KeyNode) throws -> [KeyNode] {
        try subkeyLeaves(of: key).flatMap(\.offsets).map { try self.key(atCell: $0) }
    }

    /// The subkey named `name` (case-insensitive), or nil. Entries whose `lh` hash or `lf` hint
    /// match are tried first, so a hit in a list of hundreds parses one or two key cells; the
    /// rest are still checked, so a wrong hint costs time, never a wrong answer.
    public func subkey(_ name: String, of key: KeyNode) throws -> KeyNode? {
        let wanted = RegistryName.foldKey(name)
        let hash = SubkeyList.lhHash(name)
        let hint = Self.foldedHint(SubkeyList.lfHint(name))
        var likely: [CellIndex] = []
        var others: [CellIndex] = []
        for leaf in try subkeyLeaves(of: key) {
            for (i, offset) in leaf.offsets.enumerated() {
                let matches: Bool
                switch leaf.kind {
                case .lh: matches = leaf.hints[i] == hash
                case .lf: matches = Self.foldedHint(leaf.hints[i]) == hint
                case .li, .ri: matches = true
                }
                if matches { likely.append(offset) } else { others.append(offset) }
            }
        }
        for offset in likely + others {
            let candidate = try self.key(atCell: offset)
            if RegistryName.foldKey(candidate.name) == wanted { return candidate }
        }
        return nil
    }

    /// An lf hint with ASCII letters upper-cased (hints keep the name's case).
    static func foldedHint(_ hint: UInt32) -> UInt32 {
        var out: UInt32 = 0
        for i in 0..<4 {
            var b = UInt8(truncatingIfNeeded: hint >> (8 * UInt32(i)))
            if b >= 0x61, b <= 0x7A { b -= 0x20 }
            out |= UInt32(b) << (8 * UInt32(i))
        }
        return out
    }

    /// The key at a backslash-separated path below the root ("ControlSet001\\Services"), or nil.
    public func key(_ path: String) throws -> KeyNode? {
        var current = try rootKey()
        let parts = path.split(separator: "\\").map(String.init)
        guard parts.count <= Self.maxPathDepth else {
            throw FormatError(.limitExceeded, structure: "registry path", "\(parts.count) components exceed \(Self.maxPathDepth)")
        }
        for part in parts {
            guard let next = try subkey(part, of: current) else { return nil }
            current = next
        }
        return current
    }

    // MARK: Values

    public func values(of key: KeyNode) throws -> [ValueKey] {
        guard key.valueCount > 0, key.valueList != CellIndex.none else { return [] }
        guard key.valueCount <= Self.maxValues else {
            throw FormatError(.limitExceeded, structure: "nk cell", field: "number of values", offset: key.cellOffset.fileOffset,
                "\(key.valueCount) values exceed the limit of \(Self.maxValues)")
        }
        let list = try cell(at: key.valueList, "value list")
        guard Int(key.valueCount) * 4 <= list.count else {
            throw FormatError(.outOfRange, structure: "value list", offset: key.valueList.fileOffset,
                "\(key.valueCount) values do not fit in a \(list.count)-byte cell")
        }
        return try (0..<Int(key.valueCount)).map { i in
            let offset = CellIndex(list.littleEndian(UInt32.self, at: i * 4) ?? CellIndex.none.value)
            return try ValueKey(parsing: cell(at: offset, "vk cell"), cellOffset: offset)
        }
    }

    /// The value named `name` (case-insensitive; "" is the default value), or nil.
    public func value(_ name: String, of key: KeyNode) throws -> ValueKey? {
        let wanted = RegistryName.foldKey(name)
        return try values(of: key).first { RegistryName.foldKey($0.name) == wanted }
    }

    /// The raw data of a value: inline, one cell, or `db` segments.
    public func data(of value: ValueKey) throws -> [UInt8] {
        let size = Int(value.dataSize)
        if value.isInline {
            guard size <= 4 else {
                throw FormatError(.inconsistent, structure: "vk cell", field: "data size", offset: value.cellOffset.fileOffset + 8,
                    "inline data of \(size) bytes (at most 4 fit)")
            }
            var bytes: [UInt8] = []
            for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value.dataOffset >> (8 * UInt32(i)))) }
            return Array(bytes.prefix(size))
        }
        guard size <= Self.maxValueLength else {
            throw FormatError(.limitExceeded, structure: "vk cell", field: "data size", offset: value.cellOffset.fileOffset + 8,
                "\(size) bytes exceed the limit of \(Self.maxValueLength)")
        }
        if size == 0 { return [] }
        let data = try cell(at: value.dataCell, "value data")
        if size > BigData.segmentSize, baseBlock.minorVersion >= 4, data.starts(with: Array("db".utf8)) {
            return try bigData(data, at: value.dataCell, size: size)
        }
        guard data.count >= size else {
            throw FormatError(.outOfRange, structure: "value data", offset: value.dataCell.fileOffset,
                "the value claims \(size) bytes but its cell holds \(data.count)")
        }
        return Array(data.prefix(size))
    }

    private func bigData(_ header: [UInt8], at offset: CellIndex, size: Int) throws -> [UInt8] {
        let db = try BigData(parsing: header, cellOffset: offset)
        let list = try cell(at: db.segmentList, "db segment list")
        guard Int(db.segmentCount) * 4 <= list.count, db.segmentCount > 0 else {
            throw FormatError(.outOfRange, structure: "db cell", field: "number of segments", offset: offset.fileOffset,
                "\(db.segmentCount) segments do not fit in a \(list.count)-byte list")
        }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        for i in 0..<Int(db.segmentCount) where out.count < size {
            let segment = try cell(at: CellIndex(list.littleEndian(UInt32.self, at: i * 4) ?? CellIndex.none.value), "db segment")
            out += segment.prefix(min(BigData.segmentSize, size - out.count))
        }
        guard out.count == size else {
            throw FormatError(.truncated, structure: "db cell", offset: offset.fileOffset, "segments hold \(out.count) of \(size) bytes")
        }
        return out
    }

    /// The typed value named `name` under the key at `path`, or nil when either is missing.
    public func value(at path: String, _ name: String) throws -> RegistryValue? {
        guard let key = try key(path), let vk = try value(name, of: key) else { return nil }
        return RegistryValue(type: vk.type, data: try data(of: vk))
    }
}
