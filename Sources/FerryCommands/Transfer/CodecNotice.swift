import FerryCopy
import FerryTransfer
import Foundation

/// What `ferry send` says when an optional codec library is missing (issue 10: a rescue
/// system may lack libxxhash0 or libzstd1). The transfer still runs and is still verified;
/// only slower, and the user should know why.
enum CodecNotice {
    /// The notices for a send hashing with `digest` (nil: the default, `LeafHash.preferred`)
    /// and compressing with `compress`. Unlike `ferry copy`, a send says when the default
    /// falls back to SHA-256: it is the long, bottlenecked path where the user wants to know.
    static func lines(digest: LeafHash?, compress: CompressionMode, xxh3Available: Bool, zstdAvailable: Bool) -> [String] {
        var lines: [String] = []
        if digest != .sha256 && !xxh3Available {
            lines.append(
                "ferry send: libxxhash.so.0 is not installed: blocks are hashed with SHA-256 instead of xxh3 (slower; apt install libxxhash0)")
        }
        if compress == .auto && !zstdAvailable {
            lines.append("ferry send: libzstd.so.1 is not installed: compression chooses among the other codecs (apt install libzstd1)")
        }
        return lines
    }

    /// Prints the notices that apply on this host to standard error.
    static func announce(digest: LeafHash?, compress: CompressionMode) {
        let zstd = Codec.available().contains { $0.kind == .zstd }
        for line in lines(digest: digest, compress: compress, xxh3Available: LeafHash.xxh3.isAvailable, zstdAvailable: zstd) {
            try? FileHandle.standardError.write(contentsOf: Data((line + "\n").utf8))
        }
    }
}
