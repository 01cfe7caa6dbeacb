import CFerryShims
import Crypto

/// The key of a keyed XXH3-128 leaf (`LeafHash.xxh3Keyed`): 32 random bytes drawn by a
/// delta-sync receiver for one disk of one session, sent to the sender inside the
/// session's TLS channel (docs/protocol.md, "The hash").
///
/// XXH3 takes its key as a "secret" of at least 136 high-entropy bytes; the 192-byte
/// secret (XXH3's default size) is expanded from the key with HKDF-SHA256, so both ends
/// derive the same one and the key on the wire stays 32 bytes.
public struct LeafKey: Sendable, Hashable {
    public static let size = 32
    static let secretSize = 192

    /// The key as the wire carries it.
    public let bytes: [UInt8]
    /// The XXH3 secret derived from it.
    let secret: [UInt8]
    /// The leaf of a full block of zeros under this key (holes are hashed without reading).
    let zeroBlock: BlockHash

    /// A key from its wire bytes; nil unless exactly `size` bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.size else { return nil }
        self.init(key: bytes)
    }

    private init(key bytes: [UInt8]) {
        self.bytes = bytes
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: bytes), info: Array("ferry xxh3 leaf secret v1".utf8),
            outputByteCount: Self.secretSize)
        let secret = derived.withUnsafeBytes { Array($0) }
        self.secret = secret
        // Computed once per key (a zero run is hashed as a count of these).
        zeroBlock = LeafHash.xxh3.isAvailable
            ? [UInt8](repeating: 0, count: DiskDigest.blockSize).withUnsafeBytes { Self.hash($0, secret: secret) }
            : BlockHash(words: (0, 0, 0, 0))
    }

    /// XXH3-128 of `block` under `secret`, as a 32-byte leaf (the xxh3 leaf's layout).
    static func hash(_ block: UnsafeRawBufferPointer, secret: [UInt8]) -> BlockHash {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            secret.withUnsafeBytes { s in
                ferry_xxh3_128_secret(
                    block.baseAddress, block.count, s.baseAddress, s.count, raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
        }
        return BlockHash(words: words)
    }

    /// A fresh key from the system's random source.
    public static func random() -> LeafKey {
        var generator = SystemRandomNumberGenerator()
        return LeafKey(key: (0..<size).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    // Equality and hashing by the key alone (the rest derives from it).
    public static func == (a: LeafKey, b: LeafKey) -> Bool { a.bytes == b.bytes }
    public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
}
