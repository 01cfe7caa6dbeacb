import FerryBinary
import FerryDisk
import Foundation
import FerryTestSupport
import Testing

@testable import FerryFormats

/// A deterministic generator (SplitMix64) so every fixture is reproducible from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A temporary directory removed when the value is released.
final class TempDir {
    let path: String
    init(_ label: String = "ferry-formats") throws {
        let base = FileManager.default.temporaryDirectory.path + "/\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        path = base
    }
    func file(_ name: String) -> String { path + "/" + name }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// External tools the oracle tests use.
enum Tool {
    static let qemuImg = "/usr/bin/qemu-img"

    /// True when qemu-img is installed; prints the skip reason otherwise.
    static func haveQemuImg(_ test: String = #function) -> Bool {
        if FileManager.default.isExecutableFile(atPath: qemuImg) { return true }
        Skip.because("\(test): qemu-img not installed (apt-get install qemu-utils)")
        return false
    }

    /// Runs a tool; returns exit status and standard output (stderr is appended on failure).
    @discardableResult
    static func run(_ path: String, _ arguments: [String], expectSuccess: Bool = true) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if expectSuccess && process.terminationStatus != 0 {
            Issue.record("\(path) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(String(decoding: errData, as: UTF8.self))")
        }
        return (process.terminationStatus, text + (process.terminationStatus == 0 ? "" : String(decoding: errData, as: UTF8.self)))
    }

    static func qemu(_ arguments: String...) throws { try run(qemuImg, arguments) }
}

/// Raw source images: seeded data with holes, written zeros, compressible and
/// incompressible stretches, so converted images contain every kind of cluster.
enum RawFixture {
    /// Writes a raw file of `size` bytes at `path` and returns nothing; reproducible from `seed`.
    /// `density` is the share of 64 KiB-ish pieces that get data.
    static func make(_ path: String, size: UInt64, seed: UInt64, density: Double = 0.5) throws {
        var rng = SeededRandom(seed: seed)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: size)
        var position: UInt64 = 0
        while position < size {
            let piece = min(size - position, UInt64.random(in: 4096...200_000, using: &rng))
            let roll = Double.random(in: 0..<1, using: &rng)
            if roll < density {
                var bytes = [UInt8](repeating: 0, count: Int(piece))
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:  // incompressible
                    for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
                case 1:  // compressible text-like
                    let word = Array("ferry-\(rng.next() % 1000)-".utf8)
                    for i in 0..<bytes.count { bytes[i] = word[i % word.count] }
                case 2:  // explicit zeros (a converter may store zero clusters)
                    break
                default:  // sparse bytes in a mostly-zero region
                    for _ in 0..<16 { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 1...255, using: &rng) }
                }
                try handle.seek(toOffset: position)
                try handle.write(contentsOf: Data(bytes))
            }
            position += piece
        }
    }

    /// Writes `bytes` at `offset` of an existing file.
    static func poke(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
    }
}

/// A read-only device over an array: cheaper to build than a MemoryDevice for the
/// thousands of mutants the fuzz test opens (no per-page zero scan).
final class BytesDevice: BlockDevice {
    let name: String
    let bytes: [UInt8]
    var size: UInt64 { UInt64(bytes.count) }
    let logicalSectorSize = 512
    let capabilities: DiskCapabilities = [.randomAccess]

    init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }
}
