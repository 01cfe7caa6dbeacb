/// Where a hive's bytes come from: a whole file in memory, or a file inside a guest's
/// NTFS volume read on demand (so inspecting a 60 MiB SOFTWARE hive reads only the cells
/// that a lookup touches).
public protocol HiveStorage: Sendable {
    var size: UInt64 { get }
    /// Exactly `count` bytes at `offset`; throws when the range is outside the file.
    func read(at offset: UInt64, count: Int) throws -> [UInt8]
}

/// A hive held in memory.
public struct InMemoryHive: HiveStorage {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: UInt64 { UInt64(bytes.count) }

    public func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, offset <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - offset else {
            throw HiveError.outside(offset: offset, count: count, size: size)
        }
        return Array(bytes[Int(offset)..<Int(offset) + count])
    }
}

import FerryBinary

enum HiveError {
    static func outside(offset: UInt64, count: Int, size: UInt64) -> FormatError {
        FormatError(.outOfRange, structure: "regf file", offset: offset, "\(count) bytes run past the end of the \(size)-byte hive")
    }
}
