import FerryCopy
import FerryDisk
import Testing

/// The blkhash test vectors (blkhash's test/blkhash-test.c, SHA-256, 64 KiB blocks,
/// 32 streams): our digest must equal blkhash's for the same content.
@Suite struct DigestVectorTests {
    static let block = 64 * 1024

    /// Digest of `extents`, each a byte value and a length; byte nil means an unread hole.
    func digest(_ extents: [(UInt8?, Int)]) throws -> String {
        let size = extents.reduce(0) { $0 + $1.1 }
        let disk = MemoryDevice(size: UInt64(size))
        var offset = 0
        for (byte, length) in extents {
            if let byte, byte != 0 {
                let bytes = [UInt8](repeating: byte, count: length)
                try bytes.withUnsafeBytes { try disk.write($0, at: UInt64(offset)) }
            }
            offset += length
        }
        let result = try CopyEngine.run(source: disk, target: nil)
        return try #require(result.digest).hex
    }

    @Test func oneDataBlock() throws {
        #expect(try digest([(0x41, Self.block)]) == "3fe9a19c59cc0320c1bb605e3cbf3ecd35a295a1f7a2b4e5ebc1efdd1f5ebb8c")
    }

    @Test func oneZeroBlock() throws {
        #expect(try digest([(nil, Self.block)]) == "62e22dfa9a68d2747441335d07929c1577a0a836a90cb9bddc016f1728ae0ae6")
    }

    @Test func partialBlocks() throws {
        #expect(try digest([(0x41, Self.block / 2)]) == "cd8d1ced5e8cb96831fc637e7c69a4ce940b04be401b30be7fabba4451c6e4c0")
        #expect(try digest([(nil, Self.block / 2)]) == "eb6df5009bff0bd2f11a42fdfee2f24ab88b8e2c4d8cd3fac686ecbb06a91c60")
    }

    @Test func sparse() throws {
        #expect(try digest([(nil, Self.block * 8)]) == "ac5b87337b903179e34e03ddddaa2132a5ff0733922a2c697b322416529ab50b")
        #expect(try digest([(nil, Self.block * 8 + Self.block / 2)]) == "904281f5a6b3a2cddde0ef22fcd904a7210354b637365f6f6b21bb0b2ae230cb")
        #expect(try digest([(nil, 1 << 30)]) == "cd8516de3da285cff382e4bd7528d148d8650691b5b78d77e0ebf8a6609c7aa0")
    }

    @Test func fullAndUnaligned() throws {
        let half = Self.block / 2
        #expect(
            try digest([(0x41, half), (0x42, half), (0x43, half), (0x44, half), (0x45, half), (0x46, half)])
                == "51dce4f28453cb4087dd506441da279916b60f6875e51ca4df5d2184de69509b")
        #expect(
            try digest([(0x41, half), (0x42, half), (0x43, half), (0x44, half), (0x45, half)])
                == "35b8503c0575e3b81a7d5f7f03bb9e10a2baa0b86d871e26ae9d458ff1b5e656")
    }

    @Test func mixed() throws {
        let half = Self.block / 2
        #expect(
            try digest([(0x41, half), (nil, half), (nil, half), (0, half), (0x45, half), (nil, half), (nil, half), (0, half)])
                == "6a2f51e242d77a19e966b3ecad98c63dbe0bb2ff984c4ba70fb52c6ef9956897")
        #expect(
            try digest([(0x41, half), (nil, half), (nil, half), (0, half), (0x45, half), (nil, half), (nil, half)])
                == "3dc7e5448806207aa096baccdec8d2c0a27986ebf31a4a7e96e9ec9ca334eb84")
    }

    @Test func outOfOrderRunsGiveTheSameDigest() throws {
        let size: UInt64 = 40 * UInt64(Self.block) + 100
        let inOrder = DigestBuilder(size: size)
        let shuffled = DigestBuilder(size: size)
        var rng = SystemRandomNumberGenerator()
        var runs: [(UInt64, DigestBuilder.Run)] = []
        var block: UInt64 = 0
        let blocks = inOrder.blockCount
        while block < blocks {
            let n = min(UInt64.random(in: 1...5, using: &rng), blocks - block)
            if Bool.random(using: &rng) {
                runs.append((block, .zeros(n)))
            } else {
                let hashes = (0..<n).map { i -> BlockHash in
                    let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: block + i + 1), count: inOrder.length(ofBlock: block + i))
                    return bytes.withUnsafeBytes { BlockHash(of: $0) }
                }
                runs.append((block, .hashes(hashes)))
            }
            block += n
        }
        for (first, run) in runs { inOrder.add(run, at: first) }
        for (first, run) in runs.shuffled(using: &rng) { shuffled.add(run, at: first) }
        #expect(try inOrder.finalize() == shuffled.finalize())
    }

    @Test func incompleteDigestIsAnError() throws {
        let builder = DigestBuilder(size: 3 * UInt64(Self.block))
        builder.add(.zeros(1), at: 0)
        builder.add(.zeros(1), at: 2)
        #expect(throws: DigestError.self) { try builder.finalize() }
    }
}
