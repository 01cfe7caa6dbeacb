import FerryDisk
import FerryProtocol
import FerryTestSupport
import FerryTransfer
import Foundation
import NIOCore
import Testing

extension InProcessNetwork {
@Suite(.serialized) struct CompressionTests {
    /// Compressible but not trivial: words from a small vocabulary, seeded.
    static func textDisk(at path: String, size: Int, seed: UInt64) -> [UInt8] {
        let words = ["ferry ", "disk ", "block ", "zero ", "hash ", "ntfs ", "grub ", "vmdk\n"].map { Array($0.utf8) }
        var rng = SplitMix(seed: seed)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        while bytes.count < size { bytes += words[Int(rng.next() % UInt64(words.count))] }
        bytes.removeLast(bytes.count - size)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return bytes
    }

    @Test(arguments: [CompressedExtent.Codec.zstd, .lz4, .gzip])
    func codecRoundTrip(_ kind: CompressedExtent.Codec) throws {
        guard let codec = try? Codec.load(kind) else {
            Skip.because("\(kind) library not installed")
            return
        }
        let input = Array(repeating: Array("compress me ".utf8), count: 5000).flatMap { $0 }
        var packed = [UInt8](repeating: 0, count: input.count)
        let n = try #require(input.withUnsafeBytes { i in packed.withUnsafeMutableBytes { codec.compress(i, into: $0) } })
        #expect(n < input.count / 10)
        var output = [UInt8](repeating: 0, count: input.count)
        let m = packed[0..<n].withUnsafeBytes { p in output.withUnsafeMutableBytes { codec.decompress(p, into: $0) } }
        #expect(m == input.count)
        #expect(output == input)
        // Garbage does not decompress to the promised size.
        var junk = [UInt8](repeating: 0xEE, count: 100)
        let bad = junk.withUnsafeBytes { j in output.withUnsafeMutableBytes { codec.decompress(j, into: $0) } }
        #expect(bad == nil)
        junk.removeAll()
    }

    @Test(arguments: [CompressionMode.zstd, .lz4, .gzip, .auto])
    func compressedTransferIsByteIdentical(_ mode: CompressionMode) async throws {
        if mode != .auto, mode != .gzip, (try? Codec.load(mode == .zstd ? .zstd : .lz4)) == nil {
            Skip.because("\(mode) library not installed")
            return
        }
        let dir = try Loopback.temporaryDirectory()
        let bytes = Self.textDisk(at: dir + "/src.img", size: 3 * 1024 * 1024 + 4096, seed: 11)
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.compress = mode
        _ = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        _ = try await receiver.value
        #expect(Loopback.read(dir + "/dst.img") == bytes)
    }
}
}
