public import FerryRegistry

/// Which `ControlSet00N` of a SYSTEM hive Windows boots, from the `Select` key.
///
/// After a normal shutdown Windows boots `Select\Default` (`Current` is the set the last boot
/// used; `LastKnownGood` the one F8 offers). Setup media and some damaged hives hold
/// `Current = 0`: then `Default`, then the lowest existing `ControlSet00N`, and the choice is said.
public struct ControlSets: Sendable, Equatable {
    public var current: String?
    public var `default`: String?
    public var lastKnownGood: String?
    /// The set Windows will boot: the one to judge (and to fix first).
    public var boot: String?
    /// Why `boot` was chosen when it is not simply `Default` = `Current`; nil otherwise.
    public var note: String?
    /// Every existing set `Select` names, `boot` first, each once (a fix edits them all).
    public var named: [String]

    /// The highest `ControlSetNNN` looked for when `Select` names none that exists.
    static let maxScanned = 32

    public init(_ system: Hive) throws {
        func set(_ name: String) throws -> String? {
            guard let n = try system.value(at: "Select", name)?.integer, n > 0, n < 1000 else { return nil }
            let key = Self.name(Int(n))
            return try system.key(key) != nil ? key : nil
        }
        current = try set("Current")
        `default` = try set("Default")
        lastKnownGood = try set("LastKnownGood")
        if let d = `default` {
            boot = d
            if let c = current, c != d {
                note = "Select\\Current is \(c) but Select\\Default is \(d): Windows boots \(d) after a normal shutdown; judged on \(d)"
            }
        } else if let c = current {
            boot = c
            note = "Select\\Default names no existing control set; judged on Select\\Current (\(c))"
        } else {
            boot = try (1...Self.maxScanned).map(Self.name).first { try system.key($0) != nil }
            note = boot.map { "Select\\Current and Select\\Default name no existing control set (setup media or a damaged hive); using the lowest existing one, \($0)" }
        }
        var named: [String] = []
        for s in [boot, current, `default`, lastKnownGood].compactMap({ $0 }) where !named.contains(s) { named.append(s) }
        self.named = named
    }

    static func name(_ n: Int) -> String {
        let digits = String(n)
        return "ControlSet" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
    }
}
