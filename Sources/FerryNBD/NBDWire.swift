/// Byte-array readers and writers for the small big-endian records inside options.
enum NBDWire {
    static func violation(_ detail: String) -> NBDError { NBDError(.protocolViolation, "peer", detail) }

    struct Writer {
        var bytes: [UInt8] = []
        mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(truncatingIfNeeded: v)] }
        mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) } }
        mutating func string32(_ s: String) {
            u32(UInt32(s.utf8.count))
            bytes += Array(s.utf8)
        }
    }

    struct Reader {
        let data: [UInt8]
        var at = 0
        let what: String
        init(_ data: [UInt8], what: String) {
            self.data = data
            self.what = what
        }

        var remaining: Int { data.count - at }

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= remaining else { throw NBDWire.violation("\(what) ends after \(data.count) bytes, \(n) more needed at \(at)") }
            defer { at += n }
            return data[at..<at + n]
        }
        mutating func u16() throws -> UInt16 { try take(2).reduce(0) { $0 << 8 | UInt16($1) } }
        mutating func u32() throws -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
        mutating func u64() throws -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
        mutating func string32() throws -> String {
            let n = try u32()
            guard n <= 4096 else { throw NBDWire.violation("\(what) names a \(n)-byte string (at most 4096)") }
            return String(decoding: try take(Int(n)), as: UTF8.self)
        }
        func end() throws {
            guard remaining == 0 else { throw NBDWire.violation("\(what) has \(remaining) bytes too many") }
        }
    }
}
