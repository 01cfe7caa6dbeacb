import FerryBinary

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Edits a registry hive held in memory: creates keys, sets and deletes values, and gives back
/// the whole file with its base block brought up to date (Suhanov's spec; formats §7.4).
///
/// The input is checked whole before any edit (`HiveEditor+Check.swift`): a dirty hive is
/// refused, so are bins whose cells do not tile them, and any reference (subkey list, key,
/// value list, value, data, big-data segment, security cell) that is not an allocated cell of
/// the right kind or that a second record also claims. Edits therefore never free a cell that
/// something else still uses. Nothing is written back by this type: `bytes()` is the new file.
///
/// Unlike hivex, freed cells are reused (first fit) and merged with free neighbours, so a
/// hive grows only when no free cell is large enough; then an hbin is appended.
public struct HiveEditor: Sendable {
    /// Windows splits a leaf list when it would pass this many entries (CM_MAX_INDEX, what fits
    /// in one 4 KiB cell); settable so tests can force `ri` lists with few keys.
    public var maxLeafEntries = 1012
    /// FILETIME written into new and changed keys and the base block.
    public var timestamp: UInt64

    var cells: CellAllocator
    var baseBlock: BaseBlock
    private(set) var modified = false
    /// Every `lh` hash matched its key's name when the hive was checked (the editor keeps it so).
    private var hashesExact = false

    /// Parses a whole hive file. Throws a `HiveEditError` for a dirty hive (unequal sequence
    /// numbers, bad base-block checksum) or one that is not a primary hive, and a `FormatError`
    /// for a damaged one; such a hive is never edited. No separate .LOG check is needed: Windows
    /// applies .LOG1/.LOG2 only to a dirty primary and ignores log entries of a clean one
    /// (Suhanov, §Dirty state of a hive).
    public init(bytes: [UInt8]) throws {
        try self.init(bytes: bytes, timestamp: Self.now())
    }

    public init(bytes: [UInt8], timestamp: UInt64) throws {
        let block = try BaseBlock(parsing: bytes)
        guard block.checksumValid(in: Array(bytes.prefix(BaseBlock.size))) else {
            throw HiveEditError(.dirty, "the base block checksum is wrong (a write did not finish?); refusing to edit")
        }
        guard !block.sequenceMismatch else {
            throw HiveEditError(.dirty,
                "the hive is dirty (sequence numbers \(block.primarySequence) and \(block.secondarySequence) differ): "
                    + "its .LOG files hold newer data; boot Windows once or replay the logs first")
        }
        guard block.fileType == 0, block.fileFormat == 1 else {
            throw HiveEditError(.notPrimary, "file type \(block.fileType), format \(block.fileFormat) is not a primary hive file")
        }
        baseBlock = block
        self.timestamp = timestamp
        cells = try CellAllocator(bytes: bytes, binsSize: block.hiveBinsDataSize)
        hashesExact = try check()
    }

    /// The edited hive: base block updated (both sequence numbers equal and incremented,
    /// checksum, timestamp, hive bins size). Unchanged input gives byte-identical output.
    public func bytes() -> [UInt8] {
        guard modified else { return cells.bytes }
        var block = baseBlock
        block.primarySequence = block.primarySequence &+ 1
        block.secondarySequence = block.primarySequence
        block.lastWritten = timestamp
        block.hiveBinsDataSize = cells.binsSize
        var w = ByteWriter(capacity: BaseBlock.size)
        block.write(to: &w)
        var out = cells.bytes
        out.replaceSubrange(0..<BaseBlock.size, with: w.bytes)
        return out
    }

    /// True once an edit changed something.
    public var hasChanges: Bool { modified }

    /// Bytes of hive bins now (grows when an edit needed a new hbin).
    public var hiveBinsSize: UInt32 { cells.binsSize }

    mutating func markModified() { modified = true }

    /// Runs an edit on a copy and keeps it only when the edit succeeds, so a refused edit
    /// leaves the editor as it was (the copy costs one copy of the hive's bytes per edit).
    mutating func transaction<T>(_ body: (inout HiveEditor) throws -> T) throws -> T {
        var copy = self
        let result = try body(&copy)
        self = copy
        return result
    }

    /// Now as a FILETIME (100 ns ticks since 1601-01-01).
    static func now() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let seconds = UInt64(max(0, now.tv_sec)) + 11_644_473_600
        return seconds * 10_000_000 + UInt64(max(0, now.tv_nsec)) / 100
    }

    // MARK: Records

    func keyNode(_ index: CellIndex) throws -> KeyNode {
        try KeyNode(parsing: cells.data(index, "nk cell"), cellOffset: index)
    }

    func valueKey(_ index: CellIndex) throws -> ValueKey {
        try ValueKey(parsing: cells.data(index, "vk cell"), cellOffset: index)
    }

    func subkeyList(_ index: CellIndex) throws -> SubkeyList {
        try SubkeyList(parsing: cells.data(index, "subkey list"), cellOffset: index)
    }

    /// Writes a key node back into its own cell (its name, hence its size, never changes).
    mutating func store(_ key: KeyNode) throws {
        try cells.write(key.recordBytes, at: key.cellOffset)
    }

    /// The value list of a key: vk offsets, `valueCount` of them.
    func valueOffsets(of key: KeyNode) throws -> [CellIndex] {
        guard key.valueCount > 0 else { return [] }
        let list = try cells.data(key.valueList, "value list")
        guard key.valueCount <= UInt32(Hive.maxValues), Int(key.valueCount) * 4 <= list.count else {
            throw FormatError(.outOfRange, structure: "value list", offset: key.valueList.fileOffset,
                "\(key.valueCount) values do not fit in a \(list.count)-byte cell")
        }
        return (0..<Int(key.valueCount)).map { CellIndex(list.littleEndian(UInt32.self, at: $0 * 4) ?? CellIndex.none.value) }
    }

    /// The leaf lists holding a key's subkeys with their cells, and the `ri` cell when there is one.
    func leaves(of key: KeyNode) throws -> (index: CellIndex?, leaves: [(cell: CellIndex, list: SubkeyList)]) {
        guard key.subkeyCount > 0 else { return (nil, []) }
        let top = try subkeyList(key.subkeyList)
        guard top.kind == .ri else { return (nil, [(key.subkeyList, top)]) }
        return (key.subkeyList, try top.offsets.map { ($0, try subkeyList($0)) })
    }

    /// The subkey named `name` (case-insensitive), or nil; `lh` hashes are tried first, and
    /// when every hash in the hive is exact a differing hash rules a key out without reading it
    /// (a lookup in a list of 10,000 keys then reads one or two key cells, not all of them).
    func findSubkey(_ name: String, of key: KeyNode) throws -> KeyNode? {
        let wanted = RegistryName.foldKey(name)
        let hash = SubkeyList.lhHash(name)
        var others: [CellIndex] = []
        for (_, leaf) in try leaves(of: key).leaves {
            for (i, offset) in leaf.offsets.enumerated() {
                if leaf.kind == .lh, leaf.hints[i] != hash {
                    others.append(offset)
                    continue
                }
                let child = try keyNode(offset)
                if RegistryName.foldKey(child.name) == wanted { return child }
            }
        }
        guard !hashesExact else { return nil }
        for offset in others {
            let child = try keyNode(offset)
            if RegistryName.foldKey(child.name) == wanted { return child }
        }
        return nil
    }

    /// The key at `path` below the root, or nil.
    func findKey(_ path: [String]) throws -> KeyNode? {
        guard path.count <= Hive.maxPathDepth else {
            throw HiveEditError(.limitExceeded, "a path of \(path.count) keys is deeper than \(Hive.maxPathDepth)")
        }
        var current = try keyNode(baseBlock.rootCellOffset)
        for part in path {
            guard let next = try findSubkey(part, of: current) else { return nil }
            current = next
        }
        return current
    }

    func requireKey(_ path: [String]) throws -> KeyNode {
        guard let key = try findKey(path) else {
            throw HiveEditError(.noSuchKey, "no key \\\(path.joined(separator: "\\"))")
        }
        return key
    }

    /// True when the key at `path` exists.
    public func keyExists(_ path: [String]) throws -> Bool { try findKey(path) != nil }

    /// The value `name` of the key at `path` as (type, data), or nil when either is missing.
    public func value(at path: [String], name: String) throws -> (type: UInt32, data: [UInt8])? {
        guard let key = try findKey(path), let found = try findValue(name, in: valueOffsets(of: key)) else { return nil }
        return (found.vk.type, try valueData(found.vk))
    }

    /// The value named `name` (case-insensitive) among `offsets`, with its position.
    func findValue(_ name: String, in offsets: [CellIndex]) throws -> (slot: Int, vk: ValueKey)? {
        let wanted = RegistryName.foldKey(name)
        for (slot, offset) in offsets.enumerated() {
            let vk = try valueKey(offset)
            if RegistryName.foldKey(vk.name) == wanted { return (slot, vk) }
        }
        return nil
    }
}
