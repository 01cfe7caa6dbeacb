import FerryCopy
import FerryDisk
import FerryTestSupport
import Foundation
import Synchronization
import Testing

/// Issue 9, items 3 and 9 for local copies: `TargetCommit` verifies before anything
/// gets the final name or a block 0, and one writer per target.
@Suite struct TargetCommitTests {
    static let MiB = 1 << 20

    func randomFile(_ path: String, size: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRandom(seed: seed)
        let bytes = rng.bytes(size)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return bytes
    }

    /// `copy --verify` used to rename the partial file and then verify it: a
    /// verification that failed or was interrupted left a file under the final name.
    /// Here the verification is interrupted the moment the final name appears; with
    /// the commit order right it appears only after the verification, too late to
    /// interrupt anything.
    @Test func copyVerifyRenamesOnlyAfterVerifying() throws {
        let dir = try TemporaryDirectory()
        let source = dir.file("source.raw")
        let target = dir.file("target.raw")
        let bytes = randomFile(source, size: 48 * Self.MiB, seed: 31)
        let cancellation = Cancellation()
        let stop = Atomic<Bool>(false)
        let watcher = Thread {
            while !stop.load(ordering: .relaxed) {
                if FileManager.default.fileExists(atPath: target) {
                    cancellation.cancel()
                    return
                }
                usleep(200)
            }
        }
        watcher.start()
        defer { stop.store(true, ordering: .relaxed) }
        var config = CopyConfiguration(source: source, target: target)
        config.progress = .none
        config.verify = true
        do {
            let report = try DiskCopy.run(config, cancellation: cancellation)
            #expect(report.verifiedDigest == report.result.digest)
            #expect(FileBytes.of(target) == bytes)
        } catch {
            Issue.record("the copy was interrupted after its target got its final name: \(error)")
            #expect(!FileManager.default.fileExists(atPath: target), "a failed copy left \(target)")
        }
    }

    @Test func digestMismatchCommitsNothing() throws {
        let dir = try TemporaryDirectory()
        let target = dir.file("t.raw")
        let commit = try TargetCommit.open(target, size: 1 << 20, format: .raw, overwrite: false)
        var rng = SeededRandom(seed: 3)
        let bytes = rng.bytes(1 << 20)
        try bytes.withUnsafeBytes { try commit.device.write($0, at: 0) }
        let ours = try CopyEngine.run(source: MemoryDevice(bytes: bytes), target: nil).digest
        let theirs = try CopyEngine.run(source: MemoryDevice(size: 1 << 20), target: nil).digest
        #expect(throws: VerificationError.self) { try commit.commit(digest: ours, expected: theirs) }
        #expect(!FileManager.default.fileExists(atPath: target))
        commit.abandon()
        #expect(!FileManager.default.fileExists(atPath: LocalTarget.partialName(for: target)))
        #expect(!FileManager.default.fileExists(atPath: TargetLock.lockName(for: target)))
    }

    @Test func verifyRereadsThePartialFileBeforeTheRename() throws {
        let dir = try TemporaryDirectory()
        let target = dir.file("t.raw")
        let commit = try TargetCommit.open(target, size: 1 << 20, format: .raw, overwrite: false)
        var rng = SeededRandom(seed: 4)
        let bytes = rng.bytes(1 << 20)
        try bytes.withUnsafeBytes { try commit.device.write($0, at: 0) }
        let digest = try CopyEngine.run(source: MemoryDevice(bytes: bytes), target: nil).digest
        // The storage changes under the copy: the re-read must catch it.
        let other = try FileDevice.openForWriting(LocalTarget.partialName(for: target))
        try [UInt8](repeating: 0xEE, count: 4096).withUnsafeBytes { try other.write($0, at: 300_000) }
        try other.close()
        #expect(throws: VerificationError.self) { try commit.commit(digest: digest, verify: true) }
        #expect(!FileManager.default.fileExists(atPath: target))
        commit.abandon()
        #expect(!FileManager.default.fileExists(atPath: LocalTarget.partialName(for: target)))
    }

    @Test func heldFirstBlockIsVerifiedFromMemoryAndWrittenLast() throws {
        var rng = SeededRandom(seed: 5)
        let bytes = rng.bytes(Self.MiB)
        let device = MemoryDevice(size: UInt64(Self.MiB))
        let hold = try FirstBlockHold(device)
        try bytes.withUnsafeBytes { try hold.write(UnsafeRawBufferPointer(rebasing: $0[1000...]), at: 1000) }
        try bytes.withUnsafeBytes { try hold.write(UnsafeRawBufferPointer(rebasing: $0[0..<1000]), at: 0) }
        try hold.writeZeros(at: 70_000, length: 10, mayDiscard: true)
        var expected = bytes
        for i in 70_000..<70_010 { expected[i] = 0 }
        #expect(try hold.readBytes(at: 0, count: Self.MiB) == expected)
        #expect(try device.readBytes(at: 0, count: 65536) == [UInt8](repeating: 0, count: 65536))
        try hold.release()
        #expect(try device.contents() == expected)
    }

    /// A disk that loses the write of block 0 (a lying cache, a server that drops it): the
    /// verification re-read takes block 0 from memory, so only reading it back after the
    /// release (`--verify`) can notice. Without `readBack` nothing is read and nothing caught.
    @Test func releaseWithReadBackCatchesALostBlock0() throws {
        let device = MemoryDevice(size: UInt64(Self.MiB))
        let lying = DroppingBlock0(device)
        let hold = try FirstBlockHold(lying)
        try [UInt8](repeating: 0xAB, count: Self.MiB).withUnsafeBytes { try hold.write($0, at: 0) }
        lying.dropping.store(true, ordering: .relaxed)
        try hold.release()
        #expect { try hold.release(readBack: true) } throws: { error in
            (error as? DiskError)?.code == .io && (error as? DiskError)?.operation == "verify"
        }
        lying.dropping.store(false, ordering: .relaxed)
        try hold.release(readBack: true)
        #expect(try device.readBytes(at: 0, count: 4) == [0xAB, 0xAB, 0xAB, 0xAB])
    }

    /// Two copies to one target: the second used to delete the first's partial file and
    /// write its own; now it is refused (73) before it touches anything.
    @Test func secondCopyToTheSameTargetIsRefused() throws {
        let dir = try TemporaryDirectory()
        let source = dir.file("source.raw")
        let target = dir.file("target.raw")
        _ = randomFile(source, size: 2 * Self.MiB, seed: 8)
        let first = try LocalTarget.open(target, size: 4096, overwrite: false)
        try [UInt8](repeating: 0x11, count: 4096).withUnsafeBytes { try first.device.write($0, at: 0) }
        var config = CopyConfiguration(source: source, target: target)
        config.progress = .none
        #expect { try DiskCopy.run(config, cancellation: Cancellation()) } throws: { error in
            (error as? DiskError)?.code == .inUse
        }
        // The first copy's partial file is untouched, and nothing took the final name.
        #expect(FileBytes.of(LocalTarget.partialName(for: target)) == [UInt8](repeating: 0x11, count: 4096))
        #expect(!FileManager.default.fileExists(atPath: target))

        // A second process is refused the same way, with the sysexits code for it.
        let other = try FerryExecutable.run(["copy", source, target, "--progress", "none"])
        #expect(other.status == 73, "\(other.stderr)")
        #expect(other.stderr.contains("another ferry"), "\(other.stderr)")
        first.abandon()

        // Once the first is done the target is free again.
        let report = try DiskCopy.run(config, cancellation: Cancellation())
        #expect(report.result.size == UInt64(2 * Self.MiB))
        #expect(!FileManager.default.fileExists(atPath: TargetLock.lockName(for: target)))
    }
}

enum FileBytes {
    static func of(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }
}

/// A device whose writes at offset 0 vanish while `dropping` is set.
final class DroppingBlock0: BlockDevice {
    let inner: MemoryDevice
    let dropping = Atomic<Bool>(false)
    init(_ inner: MemoryDevice) { self.inner = inner }
    var name: String { inner.name }
    var size: UInt64 { inner.size }
    var logicalSectorSize: Int { inner.logicalSectorSize }
    var capabilities: DiskCapabilities { inner.capabilities }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try inner.read(into: buffer, at: offset) }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        if dropping.load(ordering: .relaxed) && offset == 0 { return }
        try inner.write(buffer, at: offset)
    }
    func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try inner.writeZeros(at: offset, length: length, mayDiscard: mayDiscard)
    }
    func extents(at offset: UInt64, length: UInt64) throws -> [Extent] { try inner.extents(at: offset, length: length) }
    func flush() throws {}
}
