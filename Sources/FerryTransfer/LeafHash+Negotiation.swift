import FerryCopy
import FerryProtocol

extension LeafHash {
    /// What a peer puts in its hello for `preferred`: the xxh3 bit when it wants xxh3
    /// leaves and can compute them. SHA-256 needs no bit: every peer has it.
    static func offer(_ preferred: LeafHash) -> Capabilities {
        preferred == .xxh3 && LeafHash.xxh3.isAvailable ? .xxh3 : []
    }

    /// What a `--sync` peer offers: the hash exchange, and keyed XXH3 when it can compute it
    /// and `preferred` is not sha256 (`--digest sha256` keeps a delta pass on SHA-256).
    static func offerForSync(_ preferred: LeafHash) -> Capabilities {
        preferred != .sha256 && LeafHash.xxh3.isAvailable ? [.hashExchange, .keyedXXH3] : .hashExchange
    }

    /// The block hash of a session: xxh3 when both hellos offer it, else SHA-256.
    static func agreed(_ ours: Capabilities, _ theirs: Capabilities) -> LeafHash {
        ours.contains(.xxh3) && theirs.contains(.xxh3) ? .xxh3 : .sha256
    }

    /// One-way streams (`--stdin`) cannot negotiate: the receiver follows the sender's
    /// hello, and says so when it cannot.
    static func following(_ sender: Capabilities) throws(ProtocolError) -> LeafHash {
        guard sender.contains(.xxh3) else { return .sha256 }
        guard LeafHash.xxh3.isAvailable else {
            throw ProtocolError(
                .mismatch,
                "the sender hashes blocks with xxh3, which needs libxxhash.so.0 here (install libxxhash0, or send with --digest sha256)")
        }
        return .xxh3
    }
}
