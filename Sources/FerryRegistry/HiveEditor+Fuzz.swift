import FerryBinary

/// The editor's fuzz entry point (the libFuzzer target `FuzzRegistryEdit` and the mutation
/// test replay it): opens the bytes for editing, applies the edits a fix makes (new keys,
/// values of every storage kind, a replacement, deletions) and re-opens the result, which must
/// pass the editor's own whole-hive check. Bad input may only end in `isExpected` errors.
public enum RegistryEditFuzz {
    /// Returns the edited hive, or throws when the editor refused the input or an edit.
    @discardableResult
    public static func run(_ bytes: [UInt8]) throws -> [UInt8] {
        var editor = try HiveEditor(bytes: bytes, timestamp: 0x01D0_0000_0000_0000)
        editor.maxLeafEntries = 3
        let service = ["ControlSet001", "Services", "viostor"]
        try editor.createKey(service)
        try editor.setValue(at: service, name: "Start", type: 4, data: [0, 0, 0, 0])
        try editor.setValue(at: service, name: "ImagePath", type: 2, data: Array("system32\\drivers\\viostor.sys".utf8))
        try editor.setValue(at: service, name: "Start", type: 4, data: [3, 0, 0, 0])
        for i in 0..<5 { try editor.createKey(["ControlSet001", "Fuzz\(i)"]) }
        try editor.setValue(at: [], name: "Blob", type: 3, data: [UInt8](repeating: 0xA5, count: 20_000))
        try editor.deleteValue(at: [], name: "Blob")
        try editor.deleteKey(["ControlSet001", "Fuzz2"])
        if try editor.keyExists(["Select"]) { try editor.deleteValue(at: ["Select"], name: "Current") }
        let out = editor.bytes()
        _ = try HiveEditor(bytes: out, timestamp: 0)
        return out
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is FormatError || error is HiveEditError }
}
