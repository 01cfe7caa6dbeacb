import FerryCopy
import FerryDisk
import FerryTestSupport
import Foundation
import Synchronization
import Testing

/// A source that says `.remote` (or not) and records how many reads were in flight at once, and
/// the offsets a stream-like target was written at: each read waits a little, as a network
/// export's do, so that reads that can overlap do.
final class LatencyDevice: BlockDevice {
    let inner: MemoryDevice
    let remote: Bool
    let readsInFlight = Atomic<Int>(0)
    let peakReadsInFlight = Atomic<Int>(0)

    init(_ inner: MemoryDevice, remote: Bool) {
        self.inner = inner
        self.remote = remote
    }

    var name: String { "latency" }
    var size: UInt64 { inner.size }
    var logicalSectorSize: Int { 512 }
    var capabilities: DiskCapabilities { remote ? [.randomAccess, .extents, .remote] : [.randomAccess, .extents] }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let now = readsInFlight.wrappingAdd(1, ordering: .relaxed).newValue
        defer { readsInFlight.wrappingSubtract(1, ordering: .relaxed) }
        var peak = peakReadsInFlight.load(ordering: .relaxed)
        while now > peak {
            let (exchanged, original) = peakReadsInFlight.compareExchange(expected: peak, desired: now, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
        usleep(3000)
        try inner.read(into: buffer, at: offset)
    }

    func extents(at offset: UInt64, length: UInt64) throws -> [Extent] { try inner.extents(at: offset, length: length) }
}

@Suite struct CopyReadAheadTests {
    /// Random data with every third 64 KiB block zero, and a hole in the middle, `seed` printed.
    static func disk(seed: UInt64, size: Int = 9 << 20) throws -> (MemoryDevice, [UInt8]) {
        print("seed \(seed)")
        var rng = SeededRandom(seed: seed)
        var bytes = rng.bytes(size)
        for block in stride(from: 0, to: size / 65536, by: 3) {
            bytes.replaceSubrange(block * 65536..<(block + 1) * 65536, with: repeatElement(0, count: 65536))
        }
        let device = MemoryDevice(size: UInt64(size))
        // Leave [3 MiB, 4 MiB) a hole: a zero request the readers pass through unread.
        try bytes.withUnsafeBytes { raw in
            try device.write(UnsafeRawBufferPointer(rebasing: raw[0..<(3 << 20)]), at: 0)
            try device.write(UnsafeRawBufferPointer(rebasing: raw[(4 << 20)...]), at: 4 << 20)
        }
        bytes.replaceSubrange((3 << 20)..<(4 << 20), with: repeatElement(0, count: 1 << 20))
        return (device, bytes)
    }

    @Test(arguments: [(1, 1), (8, 2), (3, 7), (16, 1)])
    func readAheadDoesNotChangeTheResult(readAhead: Int, workers: Int) throws {
        let (source, bytes) = try Self.disk(seed: UInt64(100 + readAhead * 10 + workers))
        let target = MemoryDevice(size: source.size)
        var options = CopyOptions()
        options.workers = workers
        options.readAhead = readAhead
        options.requestSize = 256 * 1024
        let result = try CopyEngine.run(source: source, target: target, options: options)
        #expect(try target.contents() == bytes)
        let reference = try CopyEngine.run(source: MemoryDevice(bytes: bytes), target: nil, options: CopyOptions())
        #expect(result.digest == reference.digest)
        #expect(result.dataBytes == reference.dataBytes)
        #expect(result.zeroBytes == reference.zeroBytes)
    }

    /// A `.remote` source gets reads in flight beyond the workers (at most the read-ahead); a
    /// local one at most one per worker.
    @Test func aRemoteSourceIsReadAhead() throws {
        for remote in [true, false] {
            let (memory, bytes) = try Self.disk(seed: 7)
            let source = LatencyDevice(memory, remote: remote)
            var options = CopyOptions()
            options.workers = 2
            options.requestSize = 128 * 1024
            let target = MemoryDevice(size: source.size)
            _ = try CopyEngine.run(source: source, target: target, options: options)
            #expect(try target.contents() == bytes)
            let peak = source.peakReadsInFlight.load(ordering: .relaxed)
            if remote {
                #expect(peak > 2 && peak <= CopyOptions.remoteReadAhead, "peak reads in flight \(peak)")
            } else {
                #expect(peak <= 2, "peak reads in flight \(peak)")
            }
        }
    }

    @Test func aFailedReadFailsTheCopy() throws {
        let (memory, _) = try Self.disk(seed: 8)
        var options = CopyOptions()
        options.readAhead = 4
        options.requestSize = 128 * 1024
        let failing = FaultyDevice(memory, failAt: 5 << 20)
        // The injected error, not a hang or another one.
        let error = #expect(throws: DiskError.self) { try CopyEngine.run(source: failing, target: MemoryDevice(size: memory.size), options: options) }
        #expect(error?.description.contains("injected I/O error") == true, "\(String(describing: error))")
    }

    @Test func cancellationStopsTheReaders() throws {
        let cancellation = Cancellation()
        cancellation.cancel()
        let (memory, _) = try Self.disk(seed: 9)
        let source = FaultyDevice(memory)
        var options = CopyOptions()
        options.readAhead = 4
        #expect(throws: DiskError.self) {
            try CopyEngine.run(source: source, target: MemoryDevice(size: memory.size), options: options, cancellation: cancellation)
        }
        #expect(source.bytesRead.load(ordering: .relaxed) == 0)
    }
}
