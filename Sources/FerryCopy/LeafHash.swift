import CFerryShims
import Crypto

/// The hash of each 64 KiB block: the leaves of the disk digest tree (docs/digest.md).
///
/// The tree above the leaves is the same for both (32 SHA-256 streams and a SHA-256
/// root over 32-byte leaves); only the leaf function differs:
/// * `sha256` — blkhash's default: the digest equals `blksum`'s and `nbdcopy --blkhash`'s.
///   What every command falls back to on a host without libxxhash (`preferred`).
/// * `xxh3` — XXH3-128 (libxxhash, loaded at run time), its 16-byte canonical value
///   followed by 16 zero bytes so a leaf keeps its 32-byte slot everywhere (tree, wire,
///   journal). About ten times faster than SHA-256 with SHA-NI on this class of CPU
///   (docs/digest.md has the figures). It guards against bugs, bad disks and bad links,
///   not against an attacker who chooses the data: over the network the TLS channel
///   authenticates every byte. `ferry copy`, `ferry checksum` and `ferry send` use it by
///   default (`preferred`) to keep the hash off the critical path, so a copy's printed
///   digest and a later `ferry checksum` agree.
/// * `xxh3Keyed` — XXH3-128 keyed by a secret drawn for one delta-sync session
///   (`LeafKey`), in the same 32-byte slot. Delta sync trusts leaf equality to leave a
///   block unsent, so its leaf must resist a guest that chooses its own data; the guest
///   never sees the key (it is drawn by the receiver and travels inside TLS), so it
///   cannot aim a collision. Its digests compare only within the session.
public enum LeafHash: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case sha256
    case xxh3
    case xxh3Keyed(LeafKey)

    /// The kinds a user can name (`--digest`): a keyed leaf comes only from a session.
    public static let allCases: [LeafHash] = [.sha256, .xxh3]

    /// The name a user types and a digest is labelled with.
    public var name: String {
        switch self {
        case .sha256: "sha256"
        case .xxh3: "xxh3"
        case .xxh3Keyed: "xxh3-keyed"
        }
    }

    /// The kind named `name` (sha256 or xxh3), as `--digest` and a labelled digest spell it.
    public init?(named name: String) {
        switch name {
        case "sha256": self = .sha256
        case "xxh3": self = .xxh3
        default: return nil
        }
    }

    public var description: String { name }

    /// Whether this is a session's keyed leaf.
    public var isKeyed: Bool { key != nil }

    /// The key of a keyed leaf.
    public var key: LeafKey? {
        if case .xxh3Keyed(let key) = self { key } else { nil }
    }

    /// Whether equal leaves prove equal blocks even when a guest chose the data (SHA-256,
    /// or XXH3 under a key the guest does not know): what delta sync needs.
    public var resistsChosenData: Bool {
        switch self {
        case .sha256, .xxh3Keyed: true
        case .xxh3: false
        }
    }

    /// The leaf a command uses when not told which: xxh3 where libxxhash.so.0 loads,
    /// sha256 otherwise. The one place that decides the default.
    public static var preferred: LeafHash { xxh3.isAvailable ? .xxh3 : .sha256 }

    /// The leaf for a `--digest` the user may have given: `preferred` when none was, else
    /// the one asked for, and an error (not a silent fallback) for an xxh3 this host lacks.
    public static func chosen(_ asked: LeafHash?) throws(DigestError) -> LeafHash {
        guard let asked else { return preferred }
        return try asked.loaded()
    }

    /// Whether this host can compute it (xxh3 needs libxxhash.so.0).
    public var isAvailable: Bool {
        switch self {
        case .sha256: true
        case .xxh3, .xxh3Keyed: ferry_xxh3_load() == 1
        }
    }

    /// This leaf hash, or an error saying what is missing.
    public func loaded() throws(DigestError) -> LeafHash {
        guard isAvailable else {
            throw DigestError("the xxh3 digest needs libxxhash.so.0, which is not installed (apt install libxxhash0)")
        }
        return self
    }

    /// The leaf of one block's bytes. `isAvailable` must be true.
    @inline(__always)
    public func hash(_ block: UnsafeRawBufferPointer) -> BlockHash {
        switch self {
        case .sha256:
            return BlockHash(SHA256.hash(data: block))
        case .xxh3:
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &words) { raw in
                ferry_xxh3_128(block.baseAddress, block.count, raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
            return BlockHash(words: words)
        case .xxh3Keyed(let key):
            return LeafKey.hash(block, secret: key.secret)
        }
    }

    /// The leaf of a full block of zeros.
    public var zeroBlock: BlockHash {
        switch self {
        case .sha256: Self.sha256Zero
        case .xxh3: Self.xxh3Zero
        case .xxh3Keyed(let key): key.zeroBlock
        }
    }

    /// The leaf of `count` zero bytes (a short last block, or a full one).
    public func zeros(count: Int) -> BlockHash {
        count == DiskDigest.blockSize ? zeroBlock : [UInt8](repeating: 0, count: count).withUnsafeBytes { hash($0) }
    }

    private static let sha256Zero = zeroLeaf(.sha256)
    private static let xxh3Zero = zeroLeaf(.xxh3)

    private static func zeroLeaf(_ leaf: LeafHash) -> BlockHash {
        guard leaf.isAvailable else { return BlockHash(words: (0, 0, 0, 0)) }
        return [UInt8](repeating: 0, count: DiskDigest.blockSize).withUnsafeBytes { leaf.hash($0) }
    }
}
