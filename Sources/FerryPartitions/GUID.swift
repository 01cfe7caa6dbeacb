import FerryBinary

/// A GPT GUID in its on-disk mixed-endian form (UEFI spec Appendix A): the first three
/// fields are little-endian, the last eight bytes are stored as written.
public struct GUID: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 16 else {
            throw FormatError(.truncated, structure: "GUID", "needs 16 bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    /// Upper-case canonical text, e.g. `EBD0A0A2-B9E5-4433-87C0-68B6B72699C7`.
    public var description: String {
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        var text = ""
        for i in order {
            if i < 0 { text += "-" } else { text += [bytes[i]].hexString }
        }
        return text.uppercased()
    }
}

/// GPT partition type GUIDs ferry names (UEFI spec Table 5-7, Microsoft "Windows and GPT FAQ").
public enum GPTPartitionType {
    public static let names: [String: String] = [
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI system",
        "21686148-6449-6E6F-744E-656564454649": "BIOS boot",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
        "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
        "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3": "LDM metadata (dynamic disk)",
        "AF9B60A0-1431-4F62-BC68-3311714A69AD": "LDM data (dynamic disk)",
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux data",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
        "A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
    ]

    public static func name(_ guid: GUID) -> String { names[guid.description] ?? guid.description }
}
