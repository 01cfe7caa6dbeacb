import Crypto
import FerryBinary
import FerryCopy
import FerryDisk
import FerryTestSupport
import Foundation
import Testing

/// The xxh3 leaf hash against `xxhsum -H2` (the xxHash project's own tool), and the
/// xxh3 digest against a from-scratch rebuild of the tree of docs/digest.md.
@Suite struct LeafHashTests {
    static let block = DiskDigest.blockSize

    /// `xxhsum -H2` of `bytes`: 32 hex digits (XXH3-128, canonical form).
    func xxhsum(_ bytes: [UInt8]) throws -> String {
        let result = try Tools.run("xxhsum", ["-H2", "-"], stdin: Data(bytes))
        return String(result.stdout.prefix(32))
    }

    /// libxxhash for ferry, xxhsum for the oracle; prints why not.
    func oracleAvailable() -> Bool {
        guard LeafHash.xxh3.isAvailable else {
            Skip.because("libxxhash.so.0 is not installed")
            return false
        }
        return Tools.require("xxhsum", why: "the independent XXH3 oracle, package xxhash")
    }

    /// The one default of copy, checksum and send: xxh3 where it loads, sha256 otherwise;
    /// an explicit choice is kept, and an explicit xxh3 this host lacks is an error.
    @Test func preferredAndChosen() throws {
        #expect(LeafHash.preferred == (LeafHash.xxh3.isAvailable ? .xxh3 : .sha256))
        #expect(try LeafHash.chosen(nil) == LeafHash.preferred)
        #expect(try LeafHash.chosen(.sha256) == .sha256)
        if LeafHash.xxh3.isAvailable {
            #expect(try LeafHash.chosen(.xxh3) == .xxh3)
        } else {
            #expect(throws: DigestError.self) { try LeafHash.chosen(.xxh3) }
        }
    }

    @Test func xxh3LeafIsXXH3128PaddedTo32Bytes() throws {
        guard oracleAvailable() else { return }
        var rng = SeededRandom(seed: 0x7878_6833)
        for count in [0, 1, 3, 240, 241, 4096, Self.block - 1, Self.block] {
            let bytes = rng.bytes(count)
            let leaf = bytes.withUnsafeBytes { LeafHash.xxh3.hash($0) }.bytes
            #expect(Array(leaf[0..<16]).hexString == (try xxhsum(bytes)), "\(count) bytes")
            #expect(leaf[16..<32].allSatisfy { $0 == 0 })
        }
        let zeros = [UInt8](repeating: 0, count: Self.block)
        #expect(Array(LeafHash.xxh3.zeroBlock.bytes[0..<16]).hexString == (try xxhsum(zeros)))
    }

    /// A disk of data blocks, a hole, written zeros and a short last block: the
    /// engine's xxh3 digest equals the tree rebuilt here from xxhsum's leaves.
    @Test func xxh3DigestMatchesAnIndependentTree() throws {
        guard oracleAvailable() else { return }
        var rng = SeededRandom(seed: 0x6469_6765)
        let size = 40 * Self.block + 1000
        var content = [UInt8](repeating: 0, count: size)
        for b in [0, 1, 2, 5, 33, 39] {
            let data = rng.bytes(Self.block)
            content.replaceSubrange(b * Self.block..<(b + 1) * Self.block, with: data)
        }
        content.replaceSubrange(40 * Self.block..<size, with: rng.bytes(1000))
        let disk = MemoryDevice(size: UInt64(size))
        // Blocks 10–19 stay a hole; 20–29 are written zeros.
        for b in Array(0..<10) + Array(20..<41) {
            let end = min(size, (b + 1) * Self.block)
            try content[b * Self.block..<end].withUnsafeBytes { try disk.write($0, at: UInt64(b * Self.block)) }
        }
        var options = CopyOptions()
        options.leaf = .xxh3
        let ours = try #require(try CopyEngine.run(source: disk, target: nil, options: options).digest)

        var streams = Array(repeating: SHA256(), count: DiskDigest.streams)
        var b = 0
        while b * Self.block < size {
            let block = Array(content[b * Self.block..<min(size, (b + 1) * Self.block)])
            var leaf = try #require(hexBytes(try xxhsum(block)))
            leaf += [UInt8](repeating: 0, count: 16)
            streams[b % DiskDigest.streams].update(data: leaf)
            b += 1
        }
        var root = SHA256()
        for s in streams { root.update(data: Array(s.finalize())) }
        #expect(ours.bytes == Array(root.finalize()))
        #expect(ours.leaf == .xxh3)
        #expect(ours.labelled == "xxh3:" + ours.hex)
        #expect(DiskDigest(hex: ours.labelled) == ours)

        // The same content under SHA-256 leaves is another digest, and never equal.
        let sha = try #require(try CopyEngine.run(source: disk, target: nil).digest)
        #expect(sha != ours)
        #expect(sha.labelled == sha.hex)
    }

    func hexBytes(_ hex: String) -> [UInt8]? {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        return stride(from: 0, to: chars.count, by: 2).compactMap { UInt8(String(decoding: chars[$0..<$0 + 2], as: UTF8.self), radix: 16) }
    }
}
