import Foundation

/// The lines delta sync prints on standard error (both ends).
enum DeltaNotice {
    static func say(_ line: String) {
        try? FileHandle.standardError.write(contentsOf: Data((line + "\n").utf8))
    }

    /// A remote target (`nbd://…`) is not hashed in place: no journal can vouch for it.
    static func remoteFullCopy(_ path: String) {
        say("ferry receive: \(path) is a remote disk, which delta sync does not update in place: a full copy, verified as usual")
    }

    static func fullCopy(_ path: String, _ size: UInt64) {
        say("ferry receive: \(path) is not a \(size)-byte copy of this disk (missing, or another size): a full copy, verified as usual")
    }
}
