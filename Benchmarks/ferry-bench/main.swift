import Crypto
import FerryCopy
import FerryDisk
import Foundation

// ferry-bench: CPU-only micro-benchmarks of the copy engine's hot paths, with the
// anchor measured in the same run. Usage: swift run -c release ferry-bench [MiB]
//
//   digest   BlockHash (SHA-256 per 64 KiB block) over an in-memory buffer, one thread,
//            against a single streaming SHA-256 of the same bytes (the sha256sum anchor).
//   engine   CopyEngine checksum of an in-memory disk (digest + zero detection + planning).

let mib = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 512
var generator = SystemRandomNumberGenerator()
var buffer = [UInt8](repeating: 0, count: mib << 20)
buffer.withUnsafeMutableBytes { raw in
    for i in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: generator.next() as UInt64, toByteOffset: i, as: UInt64.self) }
}

func measure(_ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<3 {
        let start = Date()
        try body()
        best = min(best, Date().timeIntervalSince(start))
    }
    return best
}

let gb = Double(buffer.count) / 1e9
let leaves = buffer.withUnsafeBytes { raw in
    measure {
        var i = 0
        while i < raw.count {
            _ = BlockHash(of: UnsafeRawBufferPointer(rebasing: raw[i..<min(i + 65536, raw.count)]))
            i += 65536
        }
    }
}
let stream = buffer.withUnsafeBytes { raw in measure { _ = SHA256.hash(data: raw) } }
let disk = MemoryDevice(bytes: buffer)
var options = CopyOptions()
options.workers = ProcessInfo.processInfo.activeProcessorCount
let engine = try measure { _ = try CopyEngine.run(source: disk, target: nil, options: options) }

print("ferry-bench: \(mib) MiB of random data in memory, best of 3")
print(String(format: "block hashes (1 thread):  %.2f GB/s", gb / leaves))
print(String(format: "plain SHA-256 (anchor):   %.2f GB/s   ratio %.2fx", gb / stream, stream / leaves))
print(String(format: "engine checksum (%d thr): %.2f GB/s", options.workers, gb / engine))
