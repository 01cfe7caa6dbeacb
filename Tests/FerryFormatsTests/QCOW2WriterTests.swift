import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// The qcow2 writer: seeded sources written out of order from several threads;
/// every image must pass `qemu-img check` and `qemu-img compare` with its source.
@Suite struct QCOW2WriterTests {
    /// Writes `raw` into a new qcow2 through `DiskImage.writer`, in shuffled chunks
    /// from 4 threads, zeroing the ranges the source has holes in.
    func write(raw: String, to image: String, seed: UInt64, flushHalfway: Bool = false) throws -> any BlockDevice {
        let source = try FileDevice.openForReading(raw)
        let target = try FileDevice.create(image, size: 0)
        let writer = try DiskImage.writer(.qcow2, over: target, virtualSize: source.size)
        #expect(writer.size == source.size)
        var rng = SeededRandom(seed: seed)
        var chunks: [(UInt64, Int)] = []
        var at: UInt64 = 0
        while at < source.size {
            let n = Int(min(source.size - at, UInt64.random(in: 1000...400_000, using: &rng)))
            chunks.append((at, n))
            at += UInt64(n)
        }
        chunks.shuffle(using: &rng)
        let halves = flushHalfway ? [Array(chunks.prefix(chunks.count / 2)), Array(chunks.dropFirst(chunks.count / 2))] : [chunks]
        for (i, part) in halves.enumerated() {
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 4) { t in
                for (j, (offset, count)) in part.enumerated() where j % 4 == t {
                    do {
                        let bytes = try source.readBytes(at: offset, count: count)
                        if Bytes.isZero(bytes) {
                            try writer.writeZeros(at: offset, length: UInt64(count), mayDiscard: true)
                        } else {
                            try bytes.withUnsafeBytes { try writer.write($0, at: offset) }
                        }
                    } catch {
                        failures.add()
                    }
                }
            }
            #expect(failures.count == 0)
            try writer.flush()
            if flushHalfway && i == 0 { try expectCheckPasses(image) }
        }
        return writer
    }

    func expectCheckPasses(_ image: String) throws {
        let check = try Tool.run(Tool.qemuImg, ["check", "-f", "qcow2", image], expectSuccess: false)
        #expect(check.status == 0, "qemu-img check: \(check.output)")
    }

    func expectValid(_ image: String, equals raw: String, writer: any BlockDevice) throws {
        try expectCheckPasses(image)
        let compare = try Tool.run(Tool.qemuImg, ["compare", "-f", "qcow2", "-F", "raw", image, raw], expectSuccess: false)
        #expect(compare.status == 0, "qemu-img compare: \(compare.output)")
        // Read back through the writer itself and through ferry's reader.
        #expect(try Compare.firstDifference(writer, rawPath: raw) == nil)
        #expect(try Compare.firstDifference(DiskImage.openSource(image), rawPath: raw) == nil)
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func seededSourcesRoundTrip(seed: UInt64) throws {
        guard Tool.haveQemuImg() else { return }
        print("qcow2 writer: seed \(seed)")
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 17 * 1024 * 1024 + 333 * Int64(seed).magnitude, seed: seed)
        let image = dir.file("out.qcow2")
        let writer = try write(raw: raw, to: image, seed: seed, flushHalfway: seed == 2)
        try expectValid(image, equals: raw, writer: writer)
        #expect(try DiskImage.targetFormat(forPath: image) == .qcow2)
    }

    @Test func zeroingAllocatedClustersAndPartialRewrites() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 3 << 20, seed: 9, density: 1.0)
        let image = dir.file("out.qcow2")
        let writer = try write(raw: raw, to: image, seed: 9)
        // Zero a whole cluster and a partial one in both the image and the raw source,
        // then write a few bytes into the middle of the now-zero cluster.
        let rawDevice = try FileDevice.openForWriting(raw)
        for device in [writer, rawDevice] as [any BlockDevice] {
            try device.writeZeros(at: 65536, length: 65536, mayDiscard: true)
            try device.writeZeros(at: 200_000, length: 5000, mayDiscard: false)
            try [UInt8](repeating: 0xab, count: 100).withUnsafeBytes { try device.write($0, at: 65536 + 1000) }
            try device.flush()
        }
        let extents = try writer.extents(at: 0, length: writer.size)
        #expect(extents.contains { $0.kind == .data && $0.offset <= 65536 && $0.end > 65536 + 1000 })
        try expectValid(image, equals: raw, writer: writer)
    }

    @Test func sparseDiskAbove4GiB() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let size: UInt64 = (6 << 30) + 4096 + 512
        let target = try FileDevice.create(dir.file("big.qcow2"), size: 0)
        let writer = try DiskImage.writer(.qcow2, over: target, virtualSize: size)
        let marks: [UInt64] = [0, (4 << 30) - 10, (5 << 30) + 12345, size - 700]
        // Zeroing the whole (unallocated) disk first must allocate nothing: no cluster is
        // written (its speed is measured in Benchmarks/formats.sh, not asserted here).
        try writer.writeZeros(at: 0, length: size, mayDiscard: true)
        #expect(try writer.extents(at: 0, length: size).allSatisfy { $0.kind == .hole })
        let grown = try FileManager.default.attributesOfItem(atPath: dir.file("big.qcow2"))[.size] as? Int ?? 0
        #expect(grown < 1 << 20, "zeroing an empty 6 GiB disk grew the image to \(grown) bytes")
        for (i, at) in marks.enumerated() {
            try [UInt8](repeating: UInt8(i + 1), count: 700).withUnsafeBytes { try writer.write($0, at: at) }
        }
        try writer.flush()
        try expectCheckPasses(dir.file("big.qcow2"))
        let disk = try DiskImage.openSource(dir.file("big.qcow2"))
        #expect(disk.size == size)
        for (i, at) in marks.enumerated() {
            #expect(try disk.readBytes(at: at, count: 700) == [UInt8](repeating: UInt8(i + 1), count: 700))
        }
        let info = try Tool.run(Tool.qemuImg, ["info", "--output=json", dir.file("big.qcow2")]).output
        #expect(info.contains("\"virtual-size\": \(size)"))
        let data = try disk.extents(at: 0, length: size).filter { $0.kind == .data }.reduce(0) { $0 + $1.length }
        #expect(data <= 6 * 65536)
    }

    @Test func refusesNonEmptyTargetsAndHugeSizes() throws {
        let dir = try TempDir()
        let full = try FileDevice.create(dir.file("full"), size: 4096)
        #expect(throws: DiskError.self) { try DiskImage.writer(.qcow2, over: full, virtualSize: 1 << 20) }
        let empty = try FileDevice.create(dir.file("empty"), size: 0)
        #expect(throws: FormatError.self) { try DiskImage.writer(.qcow2, over: empty, virtualSize: 1 << 62) }
    }
}
