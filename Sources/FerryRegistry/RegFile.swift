import FerryBinary

/// A `.reg` file (regedit export format 5.00) as a list of changes, and their application to a
/// `HiveEditor`. The syntax accepted is what `hivexregedit --merge` accepts: `[path]` and
/// `[-path]` sections; `"name"=…` and `@=…` values with `"string"`, `dword:xxxxxxxx`,
/// `hex:…`, `hex(t):…`, `str(t):"…"`; `"name"=-` to delete; `\` line continuations; `;`
/// comments. Strings are stored as UTF-16LE with a terminating NUL, as hivexregedit does.
///
/// One difference from hivexregedit, on purpose: applying a section creates missing parent
/// keys (regedit does too); hivexregedit refuses such a section.
public struct RegFile: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        case set(name: String, type: UInt32, data: [UInt8])
        case delete(name: String)
    }

    public struct Section: Sendable, Equatable {
        /// Key names below the hive root.
        public var path: [String]
        /// `[-path]`: delete the key and its subtree.
        public var deletesKey: Bool
        public var changes: [Change]

        public init(path: [String], deletesKey: Bool = false, changes: [Change] = []) {
            self.path = path
            self.deletesKey = deletesKey
            self.changes = changes
        }
    }

    public var sections: [Section] = []

    /// Parses `.reg` text. `prefix` (e.g. `HKEY_LOCAL_MACHINE\SYSTEM`) is removed from the
    /// front of every section path, case-insensitively, as hivexregedit's `--prefix` does.
    public init(parsing text: String, prefix: String = "") throws {
        var lines: [(Int, String)] = []
        var pending = ""
        var pendingLine = 0
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            var line = String(raw)
            if line.hasSuffix("\r") { line.removeLast() }
            if pending.isEmpty { pendingLine = n + 1 }
            let trimmed = line.trimmingTrailingSpaces()
            if trimmed.hasSuffix("\\"), !trimmed.hasPrefix("[") {
                pending += String(trimmed.dropLast())
                continue
            }
            lines.append((pendingLine, pending + line))
            pending = ""
        }
        if !pending.isEmpty { lines.append((pendingLine, pending)) }

        for (number, line) in lines {
            let trimmed = line.trimmingTrailingSpaces()
            if trimmed.allSatisfy({ $0 == " " || $0 == "\t" }) || trimmed.hasPrefix(";") { continue }
            if trimmed.contains("Windows Registry Editor Version") || trimmed.hasPrefix("REGEDIT") { continue }
            if trimmed.hasPrefix("["), trimmed.hasSuffix("]") {
                var inner = String(trimmed.dropFirst().dropLast())
                let deletes = inner.hasPrefix("-")
                if deletes { inner.removeFirst() }
                sections.append(Section(path: try Self.path(inner, prefix: prefix, line: number), deletesKey: deletes, changes: []))
                continue
            }
            guard !sections.isEmpty, !(sections.last?.deletesKey ?? true) else {
                throw Self.error(number, "a value line outside a [key] section")
            }
            sections[sections.count - 1].changes.append(try Self.change(trimmed, line: number))
        }
    }

    static func error(_ line: Int, _ detail: String) -> FormatError {
        FormatError(.inconsistent, structure: ".reg file", field: "line \(line)", detail)
    }

    static func path(_ text: String, prefix: String, line: Int) throws -> [String] {
        var rest = Substring(text)
        let wantedPrefix = prefix.split(separator: "\\").joined(separator: "\\")
        if !wantedPrefix.isEmpty {
            let trimmed = rest.drop { $0 == "\\" }
            guard trimmed.uppercased().hasPrefix(wantedPrefix.uppercased()) else {
                throw error(line, "[\(text)] does not start with the prefix \(prefix)")
            }
            rest = trimmed.dropFirst(wantedPrefix.count)
            guard rest.isEmpty || rest.hasPrefix("\\") else { throw error(line, "[\(text)] does not start with the prefix \(prefix)") }
        }
        return rest.split(separator: "\\").map(String.init)
    }

    static func change(_ line: String, line number: Int) throws -> Change {
        let name: String
        var rest: Substring
        if line.hasPrefix("@=") {
            name = ""
            rest = Substring(line).dropFirst(2)
        } else {
            guard let (quoted, after) = quotedString(Substring(line)), after.hasPrefix("=") else {
                throw error(number, "expected \"name\"=value or @=value")
            }
            name = quoted
            rest = after.dropFirst()
        }
        rest = Substring(String(rest).trimmingTrailingSpaces())
        if rest == "-" { return .delete(name: name) }
        guard let (type, data) = value(rest) else { throw error(number, "cannot read the value of \"\(name)\"") }
        return .set(name: name, type: type, data: data)
    }

    static func value(_ text: Substring) -> (UInt32, [UInt8])? {
        if text.hasPrefix("dword:") {
            let digits = text.dropFirst(6)
            guard digits.count == 8, let v = UInt32(digits, radix: 16) else { return nil }
            return (RegistryValue.typeDWORD, [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: v >> $0) })
        }
        if text.hasPrefix("hex:") { return hex(text.dropFirst(4)).map { (RegistryValue.typeBinary, $0) } }
        if text.hasPrefix("hex("), let close = text.firstIndex(of: ")"), text[text.index(after: close)...].hasPrefix(":") {
            guard let type = UInt32(text[text.index(text.startIndex, offsetBy: 4)..<close], radix: 16) else { return nil }
            return hex(text[text.index(close, offsetBy: 2)...]).map { (type, $0) }
        }
        if text.hasPrefix("str("), let close = text.firstIndex(of: ")"), text[text.index(after: close)...].hasPrefix(":") {
            guard let type = UInt32(text[text.index(text.startIndex, offsetBy: 4)..<close], radix: 16),
                let (s, after) = quotedString(text[text.index(close, offsetBy: 2)...]), after.isEmpty
            else { return nil }
            return (type, utf16z(s))
        }
        if let (s, after) = quotedString(text), after.isEmpty { return (RegistryValue.typeSZ, utf16z(s)) }
        return nil
    }

    /// A double-quoted string with `\` escaping the next character, and what follows it.
    static func quotedString(_ text: Substring) -> (String, Substring)? {
        guard text.first == "\"" else { return nil }
        var out = ""
        var i = text.index(after: text.startIndex)
        while i < text.endIndex {
            let c = text[i]
            if c == "\"" { return (out, text[text.index(after: i)...]) }
            if c == "\\" {
                i = text.index(after: i)
                guard i < text.endIndex else { return nil }
            }
            out.append(text[i])
            i = text.index(after: i)
        }
        return nil
    }

    static func hex(_ text: Substring) -> [UInt8]? {
        let digits = text.filter { !($0 == "," || $0 == " " || $0 == "\t") }
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = digits.startIndex
        while i < digits.endIndex {
            let next = digits.index(i, offsetBy: 2)
            guard let byte = UInt8(digits[i..<next], radix: 16) else { return nil }
            out.append(byte)
            i = next
        }
        return out
    }

    static func utf16z(_ s: String) -> [UInt8] { (Array(s.utf16) + [0]).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    /// Applies every section in order: creates the key (and missing parents), then sets and
    /// deletes its values. Throws at the first change the editor refuses; the editor is a
    /// value, so a caller that keeps its copy of the editor loses nothing.
    public func apply(to editor: inout HiveEditor) throws {
        for section in sections {
            if section.deletesKey {
                try editor.deleteKey(section.path)
                continue
            }
            try editor.createKey(section.path)
            for change in section.changes {
                switch change {
                case .set(let name, let type, let data): try editor.setValue(at: section.path, name: name, type: type, data: data)
                case .delete(let name): try editor.deleteValue(at: section.path, name: name)
                }
            }
        }
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return String(s)
    }
}
