/// The one-time code that pairs a sender with a receiver: 80 random bits written as
/// 16 symbols of Crockford base32 (digits and lower-case letters without i, l, o, u),
/// shown in four groups of four: `7kqm-2xrt-9pfa-w3ne`.
///
/// Parsing is forgiving where typing goes wrong and strict elsewhere (Crockford's
/// rules, https://www.crockford.com/base32.html): case is ignored, dashes and spaces
/// are ignored, `i`/`l` read as `1` and `o` as `0`. Anything else — `u`, punctuation,
/// too few or too many symbols — is refused.
public struct PairingCode: Sendable, Hashable, CustomStringConvertible {
    public static let symbolCount = 16
    public static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    /// The 10 bytes (80 bits) the 16 symbols encode, most significant bit first.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count == 10 else {
            throw ProtocolError(.malformedCode, "a pairing code holds 10 bytes, not \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// A fresh code from the system's secure random source.
    public static func random() -> PairingCode {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<10).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // 10 bytes is always the right count.
        return PairingCode(unchecked: bytes)
    }

    private init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    /// Parses what a person typed.
    public init(parsing text: String) throws(ProtocolError) {
        var values: [UInt8] = []
        for c in text.utf8 {
            if c == UInt8(ascii: "-") || c == UInt8(ascii: " ") { continue }
            guard let v = Self.value(of: c) else {
                let shown = String(decoding: [c], as: UTF8.self)
                throw ProtocolError(
                    .malformedCode, "'\(shown)' is not a pairing-code symbol (codes use 0-9 and a-z without i, l, o, u)")
            }
            values.append(v)
            guard values.count <= Self.symbolCount else { break }
        }
        guard values.count == Self.symbolCount else {
            throw ProtocolError(
                .malformedCode, "a pairing code has \(Self.symbolCount) symbols (like 7kqm-2xrt-9pfa-w3ne); this one has \(values.count > Self.symbolCount ? "more" : String(values.count))")
        }
        // 16 symbols × 5 bits = 80 bits, packed big-endian.
        var accumulator: UInt64 = 0
        var bits = 0
        var out: [UInt8] = []
        for v in values {
            accumulator = (accumulator << 5) | UInt64(v)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt64(bits)))
            }
        }
        self.bytes = out
    }

    private static func value(of c: UInt8) -> UInt8? {
        var c = c
        if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { c += 32 }
        switch c {
        case UInt8(ascii: "i"), UInt8(ascii: "l"): return 1
        case UInt8(ascii: "o"): return 0
        default:
            guard let index = alphabet.firstIndex(of: c) else { return nil }
            return UInt8(index)
        }
    }

    /// `7kqm-2xrt-9pfa-w3ne`
    public var description: String {
        var symbols: [UInt8] = []
        var accumulator: UInt64 = 0
        var bits = 0
        for byte in bytes {
            accumulator = (accumulator << 8) | UInt64(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                symbols.append(Self.alphabet[Int((accumulator >> UInt64(bits)) & 31)])
            }
        }
        var text: [UInt8] = []
        for (i, s) in symbols.enumerated() {
            if i > 0 && i % 4 == 0 { text.append(UInt8(ascii: "-")) }
            text.append(s)
        }
        return String(decoding: text, as: UTF8.self)
    }
}
