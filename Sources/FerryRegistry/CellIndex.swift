/// A cell's position in a hive: bytes from the start of the first hbin, i.e. file offset − 4096
/// (Suhanov §Cell). 0xFFFFFFFF means "no cell". Kept distinct from file offsets and from
/// counts so that the later in-place writer cannot mix them up.
public struct CellIndex: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public static let none = CellIndex(0xFFFF_FFFF)
    public var isNone: Bool { self == .none }

    /// Where the cell's size field sits in the hive file.
    public var fileOffset: UInt64 { 4096 + UInt64(value) }
    /// Where the cell's data (after the 4-byte size field) sits in the hive file.
    public var dataFileOffset: UInt64 { fileOffset + 4 }

    public static func < (a: CellIndex, b: CellIndex) -> Bool { a.value < b.value }
    public var description: String { "cell \(value)" }
}
