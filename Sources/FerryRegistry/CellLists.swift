public import FerryBinary

/// A subkey list cell: `lf`/`lh` (offset + 4-byte hint or hash), `li` (offsets) or `ri`
/// (offsets of other lists). Suhanov §Subkeys list; formats §7.3.
///
/// ```
///  0 signature (2)  2 count u16  4 elements: lf/lh 8 bytes {u32 offset, u32 hint}, li/ri 4 bytes
/// ```
public struct SubkeyList: Sendable, Equatable {
    public enum Kind: String, Sendable { case lf, lh, li, ri }

    public var kind: Kind
    /// Key node offsets (or, for `ri`, list offsets).
    public var offsets: [CellIndex]
    /// The lf hints / lh hashes, parallel to `offsets` (empty for li/ri).
    public var hints: [UInt32]

    public init(kind: Kind, offsets: [CellIndex], hints: [UInt32] = []) {
        self.kind = kind
        self.offsets = offsets
        self.hints = hints
    }

    public init(parsing data: [UInt8], cellOffset: CellIndex) throws {
        let base = cellOffset.dataFileOffset
        var r = ByteReader(data, structure: "subkey list", baseOffset: base)
        let sig = String(decoding: try r.readBytes(2, field: "signature"), as: UTF8.self)
        guard let kind = Kind(rawValue: sig) else {
            throw FormatError(.badMagic, structure: "subkey list", field: "signature", offset: base, "\"\(sig)\" is not lf/lh/li/ri")
        }
        self.kind = kind
        let count = Int(try r.readLittleEndian(UInt16.self, "number of elements"))
        let width = (kind == .lf || kind == .lh) ? 8 : 4
        guard count * width <= r.remaining else {
            throw FormatError(
                .outOfRange, structure: "\(sig) list", field: "number of elements", offset: base + 2,
                "\(count) elements do not fit in a \(data.count)-byte cell")
        }
        offsets = []
        hints = []
        for _ in 0..<count {
            offsets.append(CellIndex(try r.readLittleEndian(UInt32.self, "key node offset")))
            if width == 8 { hints.append(try r.readLittleEndian(UInt32.self, "name hint")) }
        }
    }

    public func write(to w: inout ByteWriter) {
        w.write(bytes: Array(kind.rawValue.utf8))
        w.writeLittleEndian(UInt16(truncatingIfNeeded: offsets.count))
        for (i, offset) in offsets.enumerated() {
            w.writeLittleEndian(offset.value)
            if kind == .lf || kind == .lh { w.writeLittleEndian(i < hints.count ? hints[i] : 0) }
        }
    }

    /// The `lh` hash of a name: h = h × 37 + upcase(unit), over its UTF-16 code units.
    public static func lhHash(_ name: String) -> UInt32 {
        var h: UInt32 = 0
        for unit in name.uppercased().utf16 { h = h &* 37 &+ UInt32(unit) }
        return h
    }

    /// The `lf` hint: the first four characters as Latin-1, NUL-padded.
    public static func lfHint(_ name: String) -> UInt32 {
        var bytes = Array((RegistryName.latin1(name) ?? []).prefix(4))
        bytes += [UInt8](repeating: 0, count: 4 - bytes.count)
        return bytes.littleEndian(UInt32.self, at: 0) ?? 0
    }
}

/// A `db` cell: the header of a big value split into segments (minor version ≥ 4).
///
/// ```
///  0 "db"  2 number of segments u16  4 offset of the segment list u32
/// ```
public struct BigData: Sendable, Equatable {
    /// Each segment carries at most this many bytes of data (all but the last are full).
    public static let segmentSize = 16344

    public var segmentCount: UInt16
    public var segmentList: CellIndex

    public init(segmentCount: UInt16, segmentList: CellIndex) {
        self.segmentCount = segmentCount
        self.segmentList = segmentList
    }

    public init(parsing data: [UInt8], cellOffset: CellIndex) throws {
        let base = cellOffset.dataFileOffset
        var r = ByteReader(data, structure: "db cell", baseOffset: base)
        guard try r.readBytes(2, field: "signature") == Array("db".utf8) else {
            throw FormatError(.badMagic, structure: "db cell", field: "signature", offset: base, "expected \"db\"")
        }
        segmentCount = try r.readLittleEndian(UInt16.self, "number of segments")
        segmentList = CellIndex(try r.readLittleEndian(UInt32.self, "segments list offset"))
    }

    public func write(to w: inout ByteWriter) {
        w.write(bytes: Array("db".utf8))
        w.writeLittleEndian(segmentCount)
        w.writeLittleEndian(segmentList.value)
    }
}

/// The 32-byte `hbin` header (Suhanov §Hive bin).
///
/// ```
///  0 "hbin"  4 offset of this bin (relative to 4096)  8 size (multiple of 4096)
///  12 reserved (8)  20 FILETIME (first bin)  28 spare
/// ```
public struct HiveBinHeader: Sendable, Equatable {
    public static let size = 32
    public var offset: UInt32
    public var binSize: UInt32
    public var timestamp: UInt64

    public init(offset: UInt32, binSize: UInt32, timestamp: UInt64 = 0) {
        self.offset = offset
        self.binSize = binSize
        self.timestamp = timestamp
    }

    public init(parsing data: [UInt8], fileOffset: UInt64) throws {
        var r = ByteReader(data, structure: "hbin header", baseOffset: fileOffset)
        guard try r.readBytes(4, field: "signature") == Array("hbin".utf8) else {
            throw FormatError(.badMagic, structure: "hbin header", field: "signature", offset: fileOffset, "expected \"hbin\"")
        }
        offset = try r.readLittleEndian(UInt32.self, "offset")
        binSize = try r.readLittleEndian(UInt32.self, "size")
        try r.skip(8)
        timestamp = try r.readLittleEndian(UInt64.self, "timestamp")
        guard binSize >= 4096, binSize % 4096 == 0 else {
            throw FormatError(.inconsistent, structure: "hbin header", field: "size", offset: fileOffset + 8, "\(binSize) is not a positive multiple of 4096")
        }
    }

    public func write(to w: inout ByteWriter) {
        w.write(bytes: Array("hbin".utf8))
        w.writeLittleEndian(offset)
        w.writeLittleEndian(binSize)
        w.writeZeros(8)
        w.writeLittleEndian(timestamp)
        w.writeLittleEndian(UInt32(0))
    }
}
