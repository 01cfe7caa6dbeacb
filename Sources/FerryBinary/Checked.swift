/// Overflow-checked arithmetic for values that came from disk. A hostile header that
/// makes `offset + length` wrap must become an error, not a wrapped number.
public enum Checked {
    public static func add(_ a: UInt64, _ b: UInt64, _ what: String, structure: String) throws -> UInt64 {
        let (r, o) = a.addingReportingOverflow(b)
        if o { throw FormatError(.outOfRange, structure: structure, field: what, "\(a) + \(b) overflows 64 bits") }
        return r
    }

    public static func multiply(_ a: UInt64, _ b: UInt64, _ what: String, structure: String) throws -> UInt64 {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        if o { throw FormatError(.outOfRange, structure: structure, field: what, "\(a) × \(b) overflows 64 bits") }
        return r
    }
}

/// Hex rendering used for digests and error messages.
extension Sequence where Element == UInt8 {
    public var hexString: String {
        let digits: [Character] = Array("0123456789abcdef")
        var s = ""
        for b in self {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0x0f)])
        }
        return s
    }
}
