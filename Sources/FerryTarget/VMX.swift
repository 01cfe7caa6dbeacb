/// VMware's `.vmx` configuration file: one `key = "value"` per line (windows-and-targets §3.1).
///
/// ```
/// .encoding = "UTF-8"                  ← the file's text encoding (UTF-8 or windows-1252)
/// displayName = "web |22prod|22"       ← |XX is the byte 0xXX: |22 = ", |7C = |, |0A = newline
/// scsi0:0.fileName = "web.vmdk"        ← keys are case-insensitive, dotted namespaces
/// # a comment
/// ```
/// Values are double-quoted; inside the quotes nothing but `|XX` is special. Older and
/// hand-edited files also carry unquoted values, which are read up to a `#`. The same key twice
/// is legal to VMware's parser and the later line wins; here it wins too, with a warning.
public enum VMX {
    /// Bounds on hostile input: a real .vmx is a few KiB with a few hundred keys.
    public enum Limits {
        public static let maxBytes = 1 << 20
        public static let maxEntries = 20_000
        public static let maxKeyLength = 256
    }

    /// One `key = value` line.
    public struct Entry: Sendable, Equatable, Codable {
        /// The key as written (case kept for printing).
        public var key: String
        public var value: String
        /// 1-based line number.
        public var line: Int
    }

    /// A parsed file: its entries in file order (the later of two duplicates kept), and what
    /// was odd about it.
    public struct Document: Sendable, Equatable {
        public private(set) var entries: [Entry] = []
        public private(set) var warnings: [String] = []
        private var index: [String: Int] = [:]

        public init(entries: [Entry] = [], warnings: [String] = []) {
            self.warnings = warnings
            for entry in entries { add(entry) }
        }

        /// The value of `key` (case-insensitive).
        public subscript(_ key: String) -> String? {
            index[key.lowercased()].map { entries[$0].value }
        }

        /// True when the value of `key` is VMware's truth ("TRUE", "true", "1", "yes").
        public func flag(_ key: String) -> Bool? {
            guard let value = self[key]?.lowercased() else { return nil }
            switch value {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: return nil
            }
        }

        mutating func add(_ entry: Entry) {
            let lower = entry.key.lowercased()
            if let at = index[lower] {
                warnings.append("line \(entry.line): duplicate key \(entry.key) (first on line \(entries[at].line)); the later value is used")
                entries[at].value = entry.value
                entries[at].line = entry.line
            } else {
                index[lower] = entries.count
                entries.append(entry)
            }
        }

        mutating func warn(_ message: String) { warnings.append(message) }
    }

    /// Parses the bytes of a .vmx. Throws `VMXError` for input that is not a .vmx at all
    /// (binary, too large, too many keys); everything merely odd becomes a warning.
    public static func parse(_ bytes: [UInt8]) throws -> Document {
        guard bytes.count <= Limits.maxBytes else {
            throw VMXError(.tooLarge, "the file is \(bytes.count) bytes; a .vmx is a few KiB (limit \(Limits.maxBytes))")
        }
        if let nul = bytes.firstIndex(of: 0) {
            throw VMXError(.binary, "byte \(nul) is NUL: this is a binary file, not a .vmx text file")
        }
        var document = Document()
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // `.encoding` comes first in every file VMware writes; it decides how bytes ≥ 0x80 read.
        var latin1 = false
        for (number, raw) in zip(1..., lines) {
            var line = Array(raw)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            guard let parsed = try parseLine(line, number: number, latin1: latin1, document: &document) else { continue }
            guard document.entries.count < Limits.maxEntries else {
                throw VMXError(.tooManyEntries, "more than \(Limits.maxEntries) keys (line \(number)); not a real .vmx", line: number)
            }
            if parsed.key.lowercased() == ".encoding" {
                let encoding = parsed.value.lowercased()
                latin1 = encoding == "windows-1252" || encoding.hasPrefix("iso-8859") || encoding == "latin1"
                if !latin1, encoding != "utf-8" {
                    document.warn("line \(number): encoding \(parsed.value) is read as UTF-8")
                }
            }
            document.add(parsed)
        }
        return document
    }

    static func parseLine(_ line: [UInt8], number: Int, latin1: Bool, document: inout Document) throws -> Entry? {
        let text = trimmed(line[...])
        if text.isEmpty || text.first == UInt8(ascii: "#") { return nil }
        guard let equals = text.firstIndex(of: UInt8(ascii: "=")) else {
            document.warn("line \(number): no '=': ignored")
            return nil
        }
        let keyBytes = trimmed(text[text.startIndex..<equals])
        guard !keyBytes.isEmpty, keyBytes.count <= Limits.maxKeyLength,
            keyBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") })
        else {
            document.warn("line \(number): \(keyBytes.isEmpty ? "empty key" : "key is not a printable ASCII name of at most \(Limits.maxKeyLength) characters"): ignored")
            return nil
        }
        let key = String(decoding: keyBytes, as: UTF8.self)
        var rest = trimmed(text[text.index(after: equals)...])
        let valueBytes: ArraySlice<UInt8>
        if rest.first == UInt8(ascii: "\"") {
            rest = rest.dropFirst()
            if let close = rest.firstIndex(of: UInt8(ascii: "\"")) {
                valueBytes = rest[rest.startIndex..<close]
                let after = trimmed(rest[rest.index(after: close)...])
                if !after.isEmpty, after.first != UInt8(ascii: "#") {
                    document.warn("line \(number): \(key): text after the closing quote ignored")
                }
            } else {
                document.warn("line \(number): \(key): no closing quote; the value runs to the end of the line")
                valueBytes = rest
            }
        } else {
            // Unquoted: up to a comment.
            valueBytes = trimmed(rest.firstIndex(of: UInt8(ascii: "#")).map { rest[rest.startIndex..<$0] } ?? rest)
        }
        let bytes = unescape(valueBytes, key: key, number: number, document: &document)
        return Entry(key: key, value: decode(bytes, latin1: latin1, key: key, number: number, document: &document), line: number)
    }

    /// `|XX` → the byte 0xXX. A `|` not followed by two hex digits stays as it is (with one
    /// warning per line): VMware writes `|7C` for a literal bar, so a bare one is damage.
    static func unescape(_ bytes: ArraySlice<UInt8>, key: String, number: Int, document: inout Document) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        var warned = false
        while i < bytes.endIndex {
            let byte = bytes[i]
            if byte == UInt8(ascii: "|"), i + 2 < bytes.endIndex, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
                continue
            }
            if byte == UInt8(ascii: "|"), !warned {
                document.warn("line \(number): \(key): '|' not followed by two hex digits kept as is")
                warned = true
            }
            out.append(byte)
            i += 1
        }
        return out
    }

    static func decode(_ bytes: [UInt8], latin1: Bool, key: String, number: Int, document: inout Document) -> String {
        if latin1 { return String(bytes.map { Character(Unicode.Scalar($0)) }) }
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        document.warn("line \(number): \(key): the value is not UTF-8; invalid bytes replaced")
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = bytes
        while let first = s.first, first == 0x20 || first == 0x09 || first == 0x0D { s = s.dropFirst() }
        while let last = s.last, last == 0x20 || last == 0x09 || last == 0x0D { s = s.dropLast() }
        // A UTF-8 byte-order mark some editors write before the first key.
        if s.starts(with: [0xEF, 0xBB, 0xBF]) { s = s.dropFirst(3) }
        return s
    }
}

/// A .vmx that cannot be read at all.
public struct VMXError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        case tooLarge, binary, tooManyEntries, unreadable
    }

    public var code: Code
    public var detail: String
    public var line: Int?

    public init(_ code: Code, _ detail: String, line: Int? = nil) {
        self.code = code
        self.detail = detail
        self.line = line
    }

    public var description: String { ".vmx: \(detail)" }
}
