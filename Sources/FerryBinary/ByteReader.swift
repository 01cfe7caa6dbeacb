/// A bounds-checked cursor over bytes. Every integer read names its endianness
/// (as in SwiftNIO's ByteBuffer), and every read past the end throws a `FormatError`
/// naming the structure, so parsers never trap on hostile input.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    /// Current position, relative to the start of `bytes`.
    public private(set) var position: Int
    /// Where `bytes[0]` sits in the file, for error messages.
    public let baseOffset: UInt64
    /// The structure name used in errors.
    public var structure: String

    public init(_ bytes: [UInt8], structure: String, baseOffset: UInt64 = 0) {
        self.bytes = bytes
        self.position = 0
        self.baseOffset = baseOffset
        self.structure = structure
    }

    public var remaining: Int { bytes.count - position }

    private func fail(_ field: String, needing count: Int) -> FormatError {
        FormatError(
            .truncated, structure: structure, field: field,
            offset: baseOffset + UInt64(position),
            "needs \(count) bytes but only \(max(0, remaining)) remain")
    }

    public mutating func seek(to position: Int, field: String = "offset") throws {
        guard position >= 0, position <= bytes.count else {
            throw FormatError(
                .outOfRange, structure: structure, field: field, offset: baseOffset,
                "position \(position) is outside the \(bytes.count)-byte structure")
        }
        self.position = position
    }

    public mutating func skip(_ count: Int, field: String = "padding") throws {
        guard count >= 0, count <= remaining else { throw fail(field, needing: count) }
        position += count
    }

    public mutating func readBytes(_ count: Int, field: String = "bytes") throws -> [UInt8] {
        guard count >= 0, count <= remaining else { throw fail(field, needing: count) }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    public mutating func readUInt8(_ field: String = "u8") throws -> UInt8 {
        guard remaining >= 1 else { throw fail(field, needing: 1) }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readLittleEndian<T: FixedWidthInteger>(_: T.Type, _ field: String = "integer") throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw fail(field, needing: size) }
        var value: T = 0
        for i in 0..<size { value |= T(truncatingIfNeeded: bytes[position + i]) << (8 * i) }
        position += size
        return value
    }

    public mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type, _ field: String = "integer") throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw fail(field, needing: size) }
        var value: T = 0
        for i in 0..<size { value = (value << 8) | T(truncatingIfNeeded: bytes[position + i]) }
        position += size
        return value
    }

    /// Reads a value at an absolute position without moving the cursor.
    public func peekLittleEndian<T: FixedWidthInteger>(_ type: T.Type, at position: Int, _ field: String = "integer") throws -> T {
        var copy = self
        try copy.seek(to: position, field: field)
        return try copy.readLittleEndian(type, field)
    }

    public func peekBigEndian<T: FixedWidthInteger>(_ type: T.Type, at position: Int, _ field: String = "integer") throws -> T {
        var copy = self
        try copy.seek(to: position, field: field)
        return try copy.readBigEndian(type, field)
    }
}

extension Array where Element == UInt8 {
    /// Little-endian integer at `offset`, or nil when it does not fit.
    public func littleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return nil }
        var value: T = 0
        for i in 0..<size { value |= T(truncatingIfNeeded: self[offset + i]) << (8 * i) }
        return value
    }

    /// Big-endian integer at `offset`, or nil when it does not fit.
    public func bigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return nil }
        var value: T = 0
        for i in 0..<size { value = (value << 8) | T(truncatingIfNeeded: self[offset + i]) }
        return value
    }
}
