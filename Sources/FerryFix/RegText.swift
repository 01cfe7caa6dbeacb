/// Renders edits as a `.reg` file ("Windows Registry Editor Version 5.00"), the form
/// regedit, `reg import` and `hivexregedit --merge` read. It is what `ferry fix --dry-run`
/// prints, and the input the tests give hivexregedit to compare its result with ferry's.
///
/// Every value is written in the `hex(T):` form, byte for byte, so that the file says
/// exactly what ferry stores (a `"name"="text"` line would leave the terminating NUL and
/// the encoding to the reader). A DWORD is written `dword:` as regedit does.
public enum RegText {
    public static func render(_ edits: [RegistryEdit]) -> String {
        var out = "Windows Registry Editor Version 5.00\r\n"
        var current: String?
        for edit in edits {
            let key = "[\(edit.hive.rootKey)\\\(edit.keyPath)]"
            if key != current {
                out += "\r\n" + key + "\r\n"
                current = key
            }
            switch edit.kind {
            case .createKey:
                break
            case .setValue(let name, let type, let data):
                out += valueName(name) + "=" + encode(type: type, data: data) + "\r\n"
            case .deleteValue(let name):
                out += valueName(name) + "=-\r\n"
            }
        }
        return out
    }

    static func valueName(_ name: String) -> String {
        name.isEmpty ? "@" : "\"" + name.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
    }

    static func encode(type: UInt32, data: [UInt8]) -> String {
        if type == RegistryData.dword, data.count == 4 {
            let value = UInt32(data[0]) | UInt32(data[1]) << 8 | UInt32(data[2]) << 16 | UInt32(data[3]) << 24
            return "dword:" + hex(value, digits: 8)
        }
        let prefix = type == RegistryData.binary ? "hex:" : "hex(\(String(type, radix: 16))):"
        return prefix + data.map { hex(UInt32($0), digits: 2) }.joined(separator: ",")
    }

    static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

extension String {
    /// `replacingOccurrences` without Foundation.
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
