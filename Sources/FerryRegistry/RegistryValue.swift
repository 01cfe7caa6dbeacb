import FerryBinary

/// A value's data decoded by its type (REG_SZ = 1, REG_EXPAND_SZ = 2, REG_BINARY = 3,
/// REG_DWORD = 4, REG_DWORD_BIG_ENDIAN = 5, REG_MULTI_SZ = 7, REG_QWORD = 11).
public enum RegistryValue: Sendable, Equatable {
    case string(String)
    case expandString(String)
    case multiString([String])
    case dword(UInt32)
    case qword(UInt64)
    case binary([UInt8])
    case other(type: UInt32, data: [UInt8])

    public static let typeSZ: UInt32 = 1
    public static let typeExpandSZ: UInt32 = 2
    public static let typeBinary: UInt32 = 3
    public static let typeDWORD: UInt32 = 4
    public static let typeDWORDBigEndian: UInt32 = 5
    public static let typeMultiSZ: UInt32 = 7
    public static let typeQWORD: UInt32 = 11

    public init(type: UInt32, data: [UInt8]) {
        switch type {
        case Self.typeSZ: self = .string(Self.utf16String(data))
        case Self.typeExpandSZ: self = .expandString(Self.utf16String(data))
        case Self.typeMultiSZ:
            let all = Self.utf16Units(data)
            let parts = all.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF16.self) }
            self = .multiString(parts)
        case Self.typeDWORD where data.count >= 4: self = .dword(data.littleEndianU32)
        case Self.typeDWORDBigEndian where data.count >= 4:
            self = .dword(UInt32(data[0]) << 24 | UInt32(data[1]) << 16 | UInt32(data[2]) << 8 | UInt32(data[3]))
        case Self.typeQWORD where data.count >= 8:
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(data[i]) << (8 * UInt64(i)) }
            self = .qword(v)
        case Self.typeBinary: self = .binary(data)
        default: self = .other(type: type, data: data)
        }
    }

    /// String-like values as text (REG_SZ, REG_EXPAND_SZ, the first REG_MULTI_SZ entry).
    public var string: String? {
        switch self {
        case .string(let s), .expandString(let s): return s
        case .multiString(let list): return list.first
        default: return nil
        }
    }

    /// Every string of a REG_MULTI_SZ, or the single string of a REG_SZ.
    public var strings: [String] {
        switch self {
        case .multiString(let list): return list
        case .string(let s), .expandString(let s): return [s]
        default: return []
        }
    }

    /// Integer values (DWORD, QWORD, and 4/8-byte binary blobs that some tools write instead).
    public var integer: UInt64? {
        switch self {
        case .dword(let v): return UInt64(v)
        case .qword(let v): return v
        default: return nil
        }
    }

    static func utf16Units(_ data: [UInt8]) -> [UInt16] { data.utf16LittleEndianUnits }

    /// UTF-16LE up to the first NUL (REG_SZ data includes its terminator, sometimes more).
    static func utf16String(_ data: [UInt8]) -> String {
        let units = utf16Units(data)
        let end = units.firstIndex(of: 0) ?? units.count
        return String(decoding: units[0..<end], as: UTF16.self)
    }
}

extension Array where Element == UInt8 {
    fileprivate var littleEndianU32: UInt32 {
        UInt32(self[0]) | UInt32(self[1]) << 8 | UInt32(self[2]) << 16 | UInt32(self[3]) << 24
    }
}
