public import Foundation

/// The `ferry` executable that `swift build` made beside the test bundle.
public enum FerryExecutable {
    public static var path: String {
        // .build/<triple>/debug/ferryPackageTests.xctest → .build/<triple>/debug/ferry
        let bundle = Bundle.main.bundleURL.deletingLastPathComponent()
        var candidates = [bundle.appendingPathComponent("ferry").path]
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/ferry").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[candidates.count - 1]
    }

    /// Runs `ferry ARGS…`.
    @discardableResult
    public static func run(_ arguments: [String], stdin: Data? = nil) throws -> ToolResult {
        try Tools.run(path, arguments, stdin: stdin)
    }

    /// Runs a shell pipeline with `$FERRY` set to the executable.
    public static func shell(_ script: String) throws -> ToolResult {
        try Tools.run("/bin/bash", ["-c", "FERRY='\(path)'; " + script])
    }
}
