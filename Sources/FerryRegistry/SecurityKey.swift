public import FerryBinary

/// An `sk` cell: a security descriptor shared by every key that points at it (Suhanov §Key
/// security; formats §7.3). All sk cells of a hive form a doubly linked ring.
///
/// ```
///  0 "sk"  2 reserved u16  4 flink  8 blink  12 reference count u32  16 descriptor size u32
///  20 self-relative SECURITY_DESCRIPTOR
/// ```
public struct SecurityKey: Sendable, Equatable {
    /// Bytes before the descriptor.
    public static let headerSize = 20

    public var reserved: UInt16
    public var flink: CellIndex
    public var blink: CellIndex
    /// How many keys point at this descriptor.
    public var referenceCount: UInt32
    public var descriptor: [UInt8]

    public init(referenceCount: UInt32, descriptor: [UInt8], flink: CellIndex, blink: CellIndex) {
        reserved = 0
        self.flink = flink
        self.blink = blink
        self.referenceCount = referenceCount
        self.descriptor = descriptor
    }

    public init(parsing data: [UInt8], cellOffset: CellIndex) throws {
        let base = cellOffset.dataFileOffset
        var r = ByteReader(data, structure: "sk cell", baseOffset: base)
        guard try r.readBytes(2, field: "signature") == Array("sk".utf8) else {
            throw FormatError(.badMagic, structure: "sk cell", field: "signature", offset: base, "expected \"sk\"")
        }
        reserved = try r.readLittleEndian(UInt16.self, "reserved")
        flink = CellIndex(try r.readLittleEndian(UInt32.self, "flink"))
        blink = CellIndex(try r.readLittleEndian(UInt32.self, "blink"))
        referenceCount = try r.readLittleEndian(UInt32.self, "reference count")
        let size = try r.readLittleEndian(UInt32.self, "security descriptor size")
        guard Int(size) <= r.remaining else {
            throw FormatError(.outOfRange, structure: "sk cell", field: "security descriptor size", offset: base + 16,
                "a \(size)-byte descriptor does not fit in a \(data.count)-byte cell")
        }
        descriptor = try r.readBytes(Int(size), field: "security descriptor")
    }

    public func write(to w: inout ByteWriter) {
        w.write(bytes: Array("sk".utf8))
        w.writeLittleEndian(reserved)
        w.writeLittleEndian(flink.value)
        w.writeLittleEndian(blink.value)
        w.writeLittleEndian(referenceCount)
        w.writeLittleEndian(UInt32(truncatingIfNeeded: descriptor.count))
        w.write(bytes: descriptor)
    }
}
