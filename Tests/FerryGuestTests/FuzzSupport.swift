import FerryBinary
import FerryDisk
import Foundation

/// xorshift64*: a small seeded generator so every fuzz run can be replayed from its printed seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

enum Fuzz {
    /// FERRY_FUZZ_SEED replays a run; otherwise the clock picks one. Always printed.
    static func seed(_ name: String) -> UInt64 {
        let seed = ProcessInfo.processInfo.environment["FERRY_FUZZ_SEED"].flatMap { UInt64($0) }
            ?? UInt64(Date().timeIntervalSince1970 * 1000)
        print("fuzz \(name): seed \(seed) (replay with FERRY_FUZZ_SEED=\(seed))")
        return seed
    }

    /// Runs `body` until `iterations` or `budget` is reached, whichever is first, but never fewer
    /// than `minimum` times: the budget only bounds the test's time on a slow machine, the work
    /// the test asserts on does not depend on the clock. Returns the count.
    static func loop(iterations: Int, minimum: Int = 200, budget: Duration = .seconds(5), _ body: (Int) throws -> Void) rethrows -> Int {
        let clock = ContinuousClock()
        let start = clock.now
        var done = 0
        while done < iterations, done < minimum || clock.now - start < budget {
            try body(done)
            done += 1
        }
        return done
    }

    /// Only the parsers' own error types are acceptable outcomes of hostile input.
    static func isExpected(_ error: any Error) -> Bool { error is FormatError || error is DiskError }
}

/// A read-only view of another device with some bytes replaced: mutations without copying images.
final class PatchedDevice: BlockDevice {
    let inner: any BlockDevice
    let patches: [UInt64: UInt8]
    let sortedOffsets: [UInt64]

    init(_ inner: any BlockDevice, patches: [UInt64: UInt8]) {
        self.inner = inner
        self.patches = patches
        sortedOffsets = patches.keys.sorted()
    }

    var name: String { "patched " + inner.name }
    var size: UInt64 { inner.size }
    var logicalSectorSize: Int { inner.logicalSectorSize }
    var capabilities: DiskCapabilities { inner.capabilities.subtracting(.writable) }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try inner.read(into: buffer, at: offset)
        let end = offset + UInt64(buffer.count)
        for at in sortedOffsets where at >= offset && at < end {
            buffer[Int(at - offset)] = patches[at] ?? 0
        }
    }
}
