/// A virtual cluster number: a cluster's index *within one attribute's stream*.
/// Kept distinct from `LCN` so a stream position can never be used as a volume position.
public struct VCN: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }
    public static func < (a: VCN, b: VCN) -> Bool { a.value < b.value }
    public var description: String { "VCN \(value)" }
}

/// A logical cluster number: a cluster's index *on the volume* (byte offset = LCN × cluster size).
public struct LCN: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }
    public static func < (a: LCN, b: LCN) -> Bool { a.value < b.value }
    public var description: String { "LCN \(value)" }
}
