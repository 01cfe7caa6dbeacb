import FerryBinary

/// The entry point of the regf fuzz target (`FuzzTesting/`) and of the tests that replay its
/// crash inputs: opens the bytes as a hive and walks every key and value it can reach, with
/// the walk bounded as the inspector's is.
public enum RegistryFuzz {
    /// Most keys visited per input.
    public static let maxKeys = 2000

    public static func run(_ bytes: [UInt8]) throws {
        let hive = try Hive(bytes: bytes)
        var queue = [try hive.rootKey()]
        var visited = 0
        while let key = queue.popLast(), visited < maxKeys {
            visited += 1
            for value in try hive.values(of: key) { _ = RegistryValue(type: value.type, data: try hive.data(of: value)).string }
            queue += try hive.subkeys(of: key).prefix(maxKeys - visited)
        }
        _ = try hive.key("ControlSet001\\Services")
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is FormatError }
}
