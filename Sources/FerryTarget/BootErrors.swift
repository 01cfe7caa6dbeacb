/// The boot failures a migrated guest hits, for `ferry explain CODE` (issue 12 §5,
/// windows-and-targets §2, §6): the causes, the inspect verdict that tells them apart on the
/// disk, and the fix in ferry's terms.
public struct BootError: Sendable, Equatable, Codable {
    /// The code as people type it ("0x7B", "ntldr").
    public var code: String
    /// Other spellings it is looked up by.
    public var aliases: [String]
    public var title: String
    public var causes: [String]
    /// Inspect verdict ids that point at (or rule out) each cause.
    public var verdicts: [String]
    public var fix: [String]

    /// Finds an entry: `0x0000007B`, `7b`, `stop 0x7b`, `INACCESSIBLE_BOOT_DEVICE` and
    /// `"A disk read error occurred"` all work (case and spacing do not matter).
    public static func lookup(_ query: String) -> BootError? {
        let q = normalize(query)
        guard !q.isEmpty else { return nil }
        return catalogue.first { entry in ([entry.code] + entry.aliases).contains { normalize($0) == q } }
    }

    /// Lowercase, without "stop", "0x", leading zeros of a hex code, spaces and punctuation.
    static func normalize(_ raw: String) -> String {
        var s = raw.lowercased().filter { $0.isLetter || $0.isNumber }
        if s.hasPrefix("stop") { s.removeFirst(4) }
        if s.hasPrefix("0x") { s.removeFirst(2) }
        if s.allSatisfy(\.isHexDigit) {
            while s.count > 1, s.hasPrefix("0") { s.removeFirst() }
        }
        return s
    }
}
