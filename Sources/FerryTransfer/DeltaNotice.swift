import Foundation

/// The lines delta sync prints on standard error (both ends).
enum DeltaNotice {
    static func say(_ line: String) {
        try? FileHandle.standardError.write(contentsOf: Data((line + "\n").utf8))
    }

    static func fullCopy(_ path: String, _ size: UInt64) {
        say("ferry receive: \(path) is not a \(size)-byte copy of this disk (missing, or another size): a full copy, verified as usual")
    }
}
