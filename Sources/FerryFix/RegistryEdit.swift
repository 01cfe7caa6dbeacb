/// The two hives a fix edits (`%SystemRoot%\System32\config\<name>`).
public enum HiveName: String, Sendable, Codable, CaseIterable {
    case system = "SYSTEM"
    case software = "SOFTWARE"

    /// The key the hive is loaded under on a running Windows, as `.reg` files name it.
    public var rootKey: String { "HKEY_LOCAL_MACHINE\\" + rawValue }
}

/// One change to a hive, named by its path below the hive's root key.
public struct RegistryEdit: Sendable, Equatable, Codable {
    public enum Kind: Sendable, Equatable, Codable {
        /// Creates the key (and its missing parents).
        case createKey
        /// Creates or replaces a value; `name` "" is the key's default value.
        case setValue(name: String, type: UInt32, data: [UInt8])
        case deleteValue(name: String)
    }

    public var hive: HiveName
    public var path: [String]
    public var kind: Kind

    public init(_ hive: HiveName, _ path: [String], _ kind: Kind) {
        self.hive = hive
        self.path = path
        self.kind = kind
    }

    public var keyPath: String { path.joined(separator: "\\") }
}

/// Registry value types (winnt.h) and their encodings, as regedit and hivex store them.
public enum RegistryData {
    public static let sz: UInt32 = 1
    public static let expandSZ: UInt32 = 2
    public static let binary: UInt32 = 3
    public static let dword: UInt32 = 4
    public static let multiSZ: UInt32 = 7

    /// REG_SZ/REG_EXPAND_SZ data: UTF-16LE with its terminating NUL.
    public static func utf16z(_ text: String) -> [UInt8] {
        (Array(text.utf16) + [0]).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
    }

    public static func dword(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
    }
}

extension RegistryEdit {
    public static func string(_ hive: HiveName, _ path: [String], _ name: String, _ text: String) -> RegistryEdit {
        RegistryEdit(hive, path, .setValue(name: name, type: RegistryData.sz, data: RegistryData.utf16z(text)))
    }

    public static func expandString(_ hive: HiveName, _ path: [String], _ name: String, _ text: String) -> RegistryEdit {
        RegistryEdit(hive, path, .setValue(name: name, type: RegistryData.expandSZ, data: RegistryData.utf16z(text)))
    }

    public static func dword(_ hive: HiveName, _ path: [String], _ name: String, _ value: UInt32) -> RegistryEdit {
        RegistryEdit(hive, path, .setValue(name: name, type: RegistryData.dword, data: RegistryData.dword(value)))
    }
}
