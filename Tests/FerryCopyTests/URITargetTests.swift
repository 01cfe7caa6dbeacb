import FerryCopy
import FerryDisk
import FerryFormats
import FerryTestSupport
import Foundation
import Synchronization
import Testing

/// `ferry copy SRC URI` through `DiskTargets`, with a scheme of the test's own (a memory disk
/// per URI), so the commit order and the refusals are checked without an NBD server (the
/// interop tests in FerryNBDTests do the same against qemu-nbd and nbdkit).
@Suite(.serialized) struct URITargetTests {
    static let MiB = 1 << 20

    /// `ferrytest://NAME`: the memory disk registered under NAME; read-only ones refuse writing.
    struct MemoryScheme: DiskScheme {
        static let disks = Mutex<[String: MemoryDevice]>([:])
        var schemes: [String] { ["ferrytest"] }
        func openSource(_ uri: String, policy: SourcePolicy) throws -> OpenedSource {
            throw DiskError(.unsupported, uri, operation: "open", "not a source")
        }
        func openTarget(_ uri: String, size: UInt64) throws -> any BlockDevice {
            guard let disk = Self.disks.withLock({ $0[uri] }) else { throw DiskError(.notFound, uri, operation: "open", "no such disk") }
            guard disk.capabilities.contains(.writable) else { throw DiskError(.readOnly, uri, operation: "open", "read-only") }
            guard disk.size >= size else { throw DiskError(.tooSmall, uri, operation: "open", "too small") }
            return disk
        }
    }

    static func disk(_ uri: String, size: Int, fill: UInt8, writable: Bool = true) -> MemoryDevice {
        DiskSchemes.register(MemoryScheme())
        let disk = MemoryDevice(name: uri, bytes: [UInt8](repeating: fill, count: size), writable: writable)
        MemoryScheme.disks.withLock { $0[uri] = disk }
        return disk
    }

    func source(_ dir: TemporaryDirectory, size: Int, seed: UInt64) throws -> [UInt8] {
        var random = SeededRandom(seed: seed)
        var bytes = random.bytes(size)
        for i in (size / 4)..<(size / 2) { bytes[i] = 0 }  // a zero run the target must really zero
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("src.raw")))
        return bytes
    }

    @Test func copyWritesTheDiskAndALargerOneKeepsItsRest() throws {
        let dir = try TemporaryDirectory()
        let bytes = try source(dir, size: 2 * Self.MiB, seed: 61)
        let disk = Self.disk("ferrytest://large", size: 3 * Self.MiB, fill: 0x66)
        var config = CopyConfiguration(source: dir.file("src.raw"), target: "ferrytest://large")
        config.progress = .none
        config.verify = true
        let report = try DiskCopy.run(config, cancellation: Cancellation())
        #expect(report.verifiedDigest != nil)
        let after = try disk.contents()
        #expect(Array(after[..<bytes.count]) == bytes)
        #expect(after[bytes.count...].allSatisfy { $0 == 0x66 })
    }

    @Test func refusedTargetsAreLeftUntouched() throws {
        let dir = try TemporaryDirectory()
        _ = try source(dir, size: 2 * Self.MiB, seed: 62)
        let small = Self.disk("ferrytest://small", size: 2 * Self.MiB - 512, fill: 0x66)
        let readOnly = Self.disk("ferrytest://ro", size: 2 * Self.MiB, fill: 0x66, writable: false)
        for (uri, code) in [("ferrytest://small", DiskError.Code.tooSmall), ("ferrytest://ro", .readOnly)] {
            var config = CopyConfiguration(source: dir.file("src.raw"), target: uri)
            config.progress = .none
            #expect { try DiskCopy.run(config, cancellation: Cancellation()) } throws: { ($0 as? DiskError)?.code == code }
        }
        #expect(try small.contents().allSatisfy { $0 == 0x66 })
        #expect(try readOnly.contents().allSatisfy { $0 == 0x66 })
        // An image format for a URI is refused before anything is opened.
        var config = CopyConfiguration(source: dir.file("src.raw"), target: "ferrytest://small")
        config.targetFormat = .qcow2
        #expect { try DiskCopy.run(config, cancellation: Cancellation()) } throws: { error in
            (error as? DiskError).map { $0.code == .unsupported && $0.operation == "create" } ?? false
        }
        #expect(try DiskImage.targetFormat(forPath: "ferrytest://x/disk.qcow2") == .raw)
    }

    /// A copy that fails after the data (a digest mismatch at the commit) leaves block 0 blank:
    /// neither the old disk's first block nor the new one's.
    @Test func failedCommitLeavesBlock0Blank() throws {
        let dir = try TemporaryDirectory()
        let bytes = try source(dir, size: 2 * Self.MiB, seed: 63)
        let disk = Self.disk("ferrytest://cut", size: 2 * Self.MiB, fill: 0x66)
        let commit = try TargetCommit.open("ferrytest://cut", size: UInt64(bytes.count), format: .raw, overwrite: false)
        try bytes.withUnsafeBytes { try commit.device.write($0, at: 0) }
        let wrong = DiskDigest(bytes: [UInt8](repeating: 1, count: 32), leaf: .sha256)
        let right = DiskDigest(bytes: [UInt8](repeating: 2, count: 32), leaf: .sha256)
        #expect(throws: VerificationError.self) { try commit.commit(digest: right, expected: wrong) }
        commit.abandon()
        let after = try disk.contents()
        #expect(after[..<FirstBlockHold.blockSize].allSatisfy { $0 == 0 })
        #expect(Array(after[FirstBlockHold.blockSize...]) == Array(bytes[FirstBlockHold.blockSize...]))
    }
}
