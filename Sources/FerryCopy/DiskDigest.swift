public import Crypto
import FerryBinary
import Synchronization

/// ferry's disk digest: the blkhash construction (Nir Soffer's `blkhash`/`blksum`,
/// also behind `nbdcopy --blkhash`), with SHA-256, 64 KiB blocks and 32 streams.
///
/// ```
///  disk:    | block 0 | block 1 | ... | block 31 | block 32 | ... | last (maybe short) |
///  leaf:      H(b0)     H(b1)           H(b31)     H(b32)
///  stream s = H( leaf[s] ‖ leaf[s+32] ‖ leaf[s+64] ‖ … )      for s in 0..<32
///  digest   = H( stream 0 ‖ stream 1 ‖ … ‖ stream 31 )
/// ```
/// The value depends only on the disk's content and size: an all-zero block's leaf is
/// the constant H(64 KiB of zeros), so holes are hashed without being read, and a raw
/// file, its sparse copy and any image of the same content give the same digest.
/// See docs/digest.md; the test vectors come from blkhash's own test suite.
public struct DiskDigest: Sendable, Hashable, CustomStringConvertible {
    public static let blockSize = 64 * 1024
    public static let streams = 32

    public let bytes: [UInt8]
    /// The hash of each block; two digests are equal only if this matches too.
    public let leaf: LeafHash
    public init(bytes: [UInt8], leaf: LeafHash = .sha256) {
        self.bytes = bytes
        self.leaf = leaf
    }

    public var hex: String { bytes.hexString }
    /// The hex value, prefixed with its leaf hash unless that is blkhash's sha256
    /// ("xxh3:…"), so a digest printed by one command is never compared with another
    /// kind by mistake.
    public var labelled: String { leaf == .sha256 ? hex : "\(leaf):\(hex)" }
    public var description: String { labelled }

    /// Parses a 64-digit hex string, optionally labelled "xxh3:" or "sha256:".
    public init?(hex text: String) {
        var hex = Substring(text)
        var leaf = LeafHash.sha256
        if let colon = hex.firstIndex(of: ":") {
            guard let named = LeafHash(named: String(hex[..<colon])) else { return nil }
            leaf = named
            hex = hex[hex.index(after: colon)...]
        }
        self.leaf = leaf
        let chars = Array(hex.utf8)
        guard chars.count == 64 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var i = 0
        while i < 64 {
            guard let hi = Self.nibble(chars[i]), let lo = Self.nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        bytes = out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// The hash of one block (a leaf of the digest tree). 32 bytes, kept inline.
public struct BlockHash: Sendable, Hashable {
    public var a: UInt64, b: UInt64, c: UInt64, d: UInt64

    public init(_ digest: SHA256.Digest) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        digest.withUnsafeBytes { raw in
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: raw) }
        }
        (a, b, c, d) = words
    }

    init(words: (UInt64, UInt64, UInt64, UInt64)) {
        (a, b, c, d) = words
    }

    /// Hashes one block's bytes with SHA-256 (`LeafHash.hash` for the others).
    public init(of block: UnsafeRawBufferPointer) {
        self.init(SHA256.hash(data: block))
    }

    public var bytes: [UInt8] {
        var words = (a, b, c, d)
        return withUnsafeBytes(of: &words) { Array($0) }
    }

    func update(_ hasher: inout SHA256) {
        var words = (a, b, c, d)
        withUnsafeBytes(of: &words) { hasher.update(bufferPointer: $0) }
    }
}
