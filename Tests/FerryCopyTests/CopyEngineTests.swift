import FerryCopy
import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@Suite struct CopyEngineTests {
    static let MiB: UInt64 = 1 << 20

    /// A sparse source file: random data at a few places, allocated zeros at one, holes elsewhere.
    func makeSource(_ dir: TemporaryDirectory, seed: UInt64) throws -> (path: String, bytes: [UInt8]) {
        var rng = SeededRandom(seed: seed)
        print("seed \(seed)")
        let size = 24 * Self.MiB + 12345  // not a multiple of the 64 KiB block
        let path = dir.file("source.raw")
        let layout: [(UInt64, [UInt8])] = [
            (0, rng.bytes(70_000)),
            (3 * Self.MiB, [UInt8](repeating: 0, count: Int(2 * Self.MiB))),  // allocated zeros
            (5 * Self.MiB + 100, rng.bytes(3 * Int(Self.MiB))),
            (size - 5000, rng.bytes(5000)),
        ]
        try writeSparseFile(path, size: size, layout: layout)
        var bytes = [UInt8](repeating: 0, count: Int(size))
        for (offset, data) in layout { bytes.replaceSubrange(Int(offset)..<Int(offset) + data.count, with: data) }
        return (path, bytes)
    }

    func allocatedBytes(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : 0
    }

    @Test func copiesSparseFileExactlyAndKeepsHoles() throws {
        let dir = try TemporaryDirectory()
        let (sourcePath, bytes) = try makeSource(dir, seed: 42)
        var config = CopyConfiguration(source: sourcePath, target: dir.file("target.raw"))
        config.progress = .none
        let report = try DiskCopy.run(config, cancellation: Cancellation())
        let copied = try Data(contentsOf: URL(fileURLWithPath: dir.file("target.raw")))
        #expect(Array(copied) == bytes)
        // The 2 MiB of allocated zeros and the holes are not allocated in the copy.
        #expect(allocatedBytes(dir.file("target.raw")) < 4 * Self.MiB)
        #expect(report.result.zeroBytes > 20 * Self.MiB)
        #expect(report.result.dataBytes + report.result.zeroBytes == UInt64(bytes.count))
        // The on-the-fly digest equals a digest of the bytes hashed in memory.
        let memory = MemoryDevice(bytes: bytes)
        let expected = try CopyEngine.run(source: memory, target: nil).digest
        #expect(report.result.digest == expected)
        #expect(!FileManager.default.fileExists(atPath: LocalTarget.partialName(for: dir.file("target.raw"))))
    }

    @Test(arguments: [1, 2, 7])
    func workerCountDoesNotChangeResult(workers: Int) throws {
        var rng = SeededRandom(seed: UInt64(workers))
        let size = 9 * Int(Self.MiB) + 777
        var bytes = rng.bytes(size)
        // Zero out every third 64 KiB block so zero detection has work.
        for block in stride(from: 0, to: size / 65536, by: 3) {
            bytes.replaceSubrange(block * 65536..<(block + 1) * 65536, with: repeatElement(0, count: 65536))
        }
        let source = MemoryDevice(bytes: bytes)
        let target = MemoryDevice(size: UInt64(size))
        var options = CopyOptions()
        options.workers = workers
        options.requestSize = 256 * 1024
        let result = try CopyEngine.run(source: source, target: target, options: options)
        #expect(try target.contents() == bytes)
        let reference = try CopyEngine.run(source: MemoryDevice(bytes: bytes), target: nil, options: CopyOptions())
        #expect(result.digest == reference.digest)
    }

    @Test func sourceHolesAreNotRead() throws {
        let size: UInt64 = 16 << 30  // 16 GiB, almost all hole
        let memory = MemoryDevice(size: size)
        try [UInt8](repeating: 7, count: 4096).withUnsafeBytes { try memory.write($0, at: 5 << 30) }
        let source = FaultyDevice(memory)
        let result = try CopyEngine.run(source: source, target: NullDevice(size: size))
        // Only the 64 KiB block holding data was read.
        #expect(source.bytesRead.load(ordering: .relaxed) == 65536)
        // Data is counted per 64 KiB block: the one block holding the 4 KiB.
        #expect(result.dataBytes == 65536)
    }

    @Test func targetSmallerThanSourceIsRefused() throws {
        let source = MemoryDevice(size: 1 << 20)
        let target = MemoryDevice(size: 1 << 19)
        #expect(throws: DiskError.self) { try CopyEngine.run(source: source, target: target) }
    }

    @Test func failedCopyLeavesNoTargetFile() throws {
        let dir = try TemporaryDirectory()
        let (sourcePath, _) = try makeSource(dir, seed: 7)
        let target = dir.file("target.raw")
        let local = try LocalTarget.open(target, size: 24 * Self.MiB + 12345, overwrite: false)
        let source = FaultyDevice(try FileDevice.openForReading(sourcePath), failAt: 6 * Self.MiB)
        #expect(throws: DiskError.self) { try CopyEngine.run(source: source, target: local.device) }
        local.abandon()
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(!FileManager.default.fileExists(atPath: LocalTarget.partialName(for: target)))
    }

    @Test func inPlaceTargetGetsItsFirstBlockOnlyOnSuccess() throws {
        var rng = SeededRandom(seed: 99)
        let bytes = rng.bytes(4 * Int(Self.MiB))
        let device = MemoryDevice(size: UInt64(bytes.count))
        try [UInt8](repeating: 0xAA, count: bytes.count).withUnsafeBytes { try device.write($0, at: 0) }
        var options = CopyOptions()
        options.requestSize = 128 * 1024
        let failing = FaultyDevice(MemoryDevice(bytes: bytes), failAt: 3 * Self.MiB)
        #expect(throws: DiskError.self) { try CopyEngine.run(source: failing, target: try FirstBlockHold(device), options: options) }
        // The old first block was zeroed before copying began and the new one never written.
        #expect(try device.readBytes(at: 0, count: 65536).allSatisfy { $0 == 0 })

        let target = try FirstBlockHold(device)
        let result = try CopyEngine.run(source: MemoryDevice(bytes: bytes), target: target, options: options)
        // Everything but block 0 is on the device; block 0 reads from memory until released.
        #expect(try device.readBytes(at: 0, count: 65536).allSatisfy { $0 == 0 })
        #expect(try target.readBytes(at: 0, count: bytes.count) == bytes)
        try target.release()
        #expect(try device.contents() == bytes)
        #expect(result.dataBytes == UInt64(bytes.count))
    }

    @Test func cancellationStopsTheCopy() throws {
        let cancellation = Cancellation()
        cancellation.cancel()
        var rng = SeededRandom(seed: 5)
        let source = MemoryDevice(bytes: rng.bytes(1 << 20))
        #expect(throws: DiskError.self) {
            try CopyEngine.run(source: source, target: MemoryDevice(size: 1 << 20), cancellation: cancellation)
        }
    }

    @Test func existingTargetNeedsOverwrite() throws {
        let dir = try TemporaryDirectory()
        let (sourcePath, bytes) = try makeSource(dir, seed: 3)
        let target = dir.file("existing.raw")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: target))
        var config = CopyConfiguration(source: sourcePath, target: target)
        config.progress = .none
        #expect { try DiskCopy.run(config, cancellation: Cancellation()) } throws: { error in
            (error as? DiskError)?.code == .exists
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")
        config.overwrite = true
        config.verify = true
        let report = try DiskCopy.run(config, cancellation: Cancellation())
        #expect(report.verifiedDigest == report.result.digest)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: target))) == bytes)
    }

    @Test func plannerAlignsRequestsToDigestBlocks() throws {
        let memory = MemoryDevice(size: 10 << 20)
        try [UInt8](repeating: 1, count: 10).withUnsafeBytes { try memory.write($0, at: 3 << 20) }
        let planner = CopyPlanner(source: memory, requestSize: 1 << 20)
        var requests: [CopyRequest] = []
        while let r = try planner.next() { requests.append(r) }
        #expect(requests.allSatisfy { $0.offset % 65536 == 0 })
        #expect(requests.filter { $0.kind == .data }.map(\.length) == [65536])
        #expect(requests.reduce(0) { $0 + $1.length } == 10 << 20)
        #expect(requests.count == 3)
    }
}

/// A device whose extents leave gaps: it describes only some ranges as holes and says
/// nothing about the rest, which holds data.
private final class GappyExtentsDevice: BlockDevice {
    let inner: MemoryDevice
    let described: [Extent]
    var name: String { "gappy" }
    var size: UInt64 { inner.size }
    var logicalSectorSize: Int { 512 }
    var capabilities: DiskCapabilities { [.randomAccess, .extents] }

    init(_ inner: MemoryDevice, described: [Extent]) {
        self.inner = inner
        self.described = described
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try inner.read(into: buffer, at: offset) }

    func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        described.filter { $0.end > offset && $0.offset < offset + length }
    }
}

@Suite struct CopyPlanGapTests {
    /// The planner used to call a block zero when the extents in it were holes, even
    /// though part of it was described by no extent at all: the gap's data was skipped.
    @Test func aGapBetweenExtentsIsData() throws {
        let memory = MemoryDevice(size: 1 << 20)
        var rng = SeededRandom(seed: 14)
        let data = rng.bytes(100_000)
        try data.withUnsafeBytes { try memory.write($0, at: 70_000) }  // in the gap 64 KiB…256 KiB
        try [UInt8](repeating: 7, count: 10).withUnsafeBytes { try memory.write($0, at: 1_000_000) }  // after the last extent
        let source = GappyExtentsDevice(memory, described: [
            Extent(offset: 0, length: 65536, kind: .hole),
            Extent(offset: 262_144, length: 65536, kind: .hole),
            Extent(offset: 327_680, length: 65536, kind: .zero),
            Extent(offset: 458_752, length: 65536, kind: .hole),  // a gap before it too
        ])
        let planner = CopyPlanner(source: source, requestSize: 1 << 20)
        var requests: [CopyRequest] = []
        while let r = try planner.next() { requests.append(r) }
        func kind(at offset: UInt64) -> CopyRequest.Kind? {
            requests.first { $0.offset <= offset && offset < $0.offset + $0.length }?.kind
        }
        #expect(kind(at: 0) == .zero)
        for offset: UInt64 in [65536, 131_072, 196_608, 393_216, 524_288, 1_000_000] {
            #expect(kind(at: offset) == .data, "undescribed range at \(offset) must be read: \(requests)")
        }
        #expect(kind(at: 262_144) == .zero && kind(at: 327_680) == .zero && kind(at: 458_752) == .zero)

        // The whole copy carries the gap's bytes.
        let target = MemoryDevice(size: 1 << 20)
        _ = try CopyEngine.run(source: source, target: target, options: CopyOptions(), counters: CopyCounters(), cancellation: Cancellation())
        #expect(try target.readBytes(at: 70_000, count: data.count) == data)
        #expect(try target.readBytes(at: 1_000_000, count: 10) == [UInt8](repeating: 7, count: 10))
    }
}
