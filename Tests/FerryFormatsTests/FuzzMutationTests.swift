import FerryBinary
import FerryDisk
import Foundation
import FerryTestSupport
import Testing

@testable import FerryFormats

/// Seeded mutation fuzzing: small valid images with a few bytes changed are opened
/// and read in memory; every outcome must be data or a thrown error, never a crash,
/// hang or unbounded allocation. Set FERRY_FUZZ_ITERATIONS / FERRY_FUZZ_SEED to run
/// longer or replay (see FuzzTesting/README.md).
@Suite struct FuzzMutationTests {
    static var iterations: Int { Int(ProcessInfo.processInfo.environment["FERRY_FUZZ_ITERATIONS"] ?? "") ?? 2000 }
    static var seed: UInt64 { UInt64(ProcessInfo.processInfo.environment["FERRY_FUZZ_SEED"] ?? "") ?? 20_261_127 }

    /// Seed images: ferry's own qcow2 writer always; qemu-img variants when installed.
    func corpus(_ dir: TempDir) throws -> [(name: String, format: ImageFormat, bytes: [UInt8])] {
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 300_000, seed: 5, density: 0.6)
        var result: [(String, ImageFormat, [UInt8])] = []
        let source = try FileDevice.openForReading(raw)
        let target = try FileDevice.create(dir.file("ferry.qcow2"), size: 0)
        let writer = try DiskImage.writer(.qcow2, over: target, virtualSize: source.size)
        try source.readBytes(at: 0, count: Int(source.size)).withUnsafeBytes { try writer.write($0, at: 0) }
        try writer.flush()
        result.append(("ferry.qcow2", .qcow2, try Data(contentsOf: URL(fileURLWithPath: dir.file("ferry.qcow2"))).map { $0 }))
        // A VMware-dialect stream (footer, markers) from the test builder.
        var padded = try source.readBytes(at: 0, count: Int(source.size))
        padded += [UInt8](repeating: 0, count: (512 - padded.count % 512) % 512)
        result.append(("vmware-stream.vmdk", .vmdk, VMwareStreamBuilder.build(from: padded)))
        guard Tool.haveQemuImg("the fuzz corpus's qemu-img variants") else {
            print("fuzz: fuzzing ferry-written images only")
            return result
        }
        let variants: [(String, String, [String])] = [
            ("v2.qcow2", "qcow2", ["-o", "compat=0.10,cluster_size=4096"]),
            ("c.qcow2", "qcow2", ["-c", "-o", "cluster_size=4096"]),
            ("x.qcow2", "qcow2", ["-o", "extended_l2=on,cluster_size=16384"]),
            ("s.vmdk", "vmdk", ["-o", "subformat=monolithicSparse"]),
            ("so.vmdk", "vmdk", ["-o", "subformat=streamOptimized"]),
            ("d.vhd", "vpc", ["-o", "subformat=dynamic"]),
            ("d.vhdx", "vhdx", ["-o", "subformat=dynamic,block_size=1M"]),
        ]
        // A VHDX with a dirty log, so log search and replay meet mutations too (the
        // 300 KB disk has one block; the log allocates BAT entry 1 beyond it).
        try Tool.run(Tool.qemuImg, ["convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, dir.file("log.vhdx")])
        var logRNG = SeededRandom(seed: 3)
        if let dirty = try VHDXLogBuilder.dirty(clean: try Data(contentsOf: URL(fileURLWithPath: dir.file("log.vhdx"))).map { $0 }, rng: &logRNG) {
            result.append(("log.vhdx", .vhdx, dirty.bytes))
        }
        for (name, format, options) in variants {
            try Tool.run(Tool.qemuImg, ["convert", "-f", "raw", "-O", format] + options + [raw, dir.file(name)])
            let kind: ImageFormat = ["vmdk": .vmdk, "vpc": .vhd, "vhdx": .vhdx][format] ?? .qcow2
            result.append((name, kind, try Data(contentsOf: URL(fileURLWithPath: dir.file(name))).map { $0 }))
        }
        return result
    }

    /// Opens `bytes` as an image held in memory and reads a bounded amount of it.
    static func exercise(_ bytes: [UInt8], format: ImageFormat, name: String) throws {
        let file = HostFile(path: name, device: BytesDevice(name: name, bytes: bytes))
        var chain = ChainGuard()
        let disk: MappedDisk
        switch format {
        case .vmdk: disk = try VMDK.open(file, chain: &chain)
        case .vhd: disk = try VHD.open(file, chain: &chain)
        case .vhdx: disk = try VHDX.open(file, chain: &chain)
        default: disk = try QCOW2.open(file, chain: &chain)
        }
        // Bounded work per case: a mutated size may claim petabytes.
        let span = min(disk.size, 64 << 20)
        _ = try disk.extents(at: 0, length: span)
        var at: UInt64 = 0
        while at < min(span, 1 << 20) {
            let n = Int(min(span - at, 128 * 1024 + 17))
            _ = try disk.readBytes(at: at, count: n)
            at += UInt64(n)
        }
    }

    @Test func mutatedImagesOnlyThrow() throws {
        let dir = try TempDir()
        let seeds = try corpus(dir)
        var rng = SeededRandom(seed: Self.seed)
        print("fuzz: seed \(Self.seed), \(Self.iterations) iterations over \(seeds.count) images")
        var thrown = 0
        var slowest: (seconds: Double, iteration: Int, name: String) = (0, 0, "")
        let start = Date()
        for i in 0..<Self.iterations {
            let (name, format, original) = seeds[i % seeds.count]
            var bytes = original
            // Most mutations hit the metadata at the front, where the parsers live.
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let hot = Bool.random(using: &rng)
                let limit = hot ? min(bytes.count, 64 * 1024) : bytes.count
                let at = Int.random(in: 0..<limit, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                case 1: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 2: bytes[at] = [0x00, 0xff, 0x7f, 0x80].randomElement(using: &rng) ?? 0
                default:
                    for k in at..<min(bytes.count, at + 8) { bytes[k] = 0xff }
                }
            }
            if Int.random(in: 0..<20, using: &rng) == 0 {
                bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng))
            }
            let began = Date()
            defer {
                let took = Date().timeIntervalSince(began)
                if took > slowest.seconds { slowest = (took, i, name) }
            }
            do {
                try Self.exercise(bytes, format: format, name: "\(name)#\(i)")
            } catch is FormatError {
                thrown += 1
            } catch is DiskError {
                thrown += 1
            } catch {
                Issue.record("iteration \(i) (\(name), seed \(Self.seed)) threw an unexpected \(type(of: error)): \(error)")
            }
        }
        print("fuzz: \(thrown) of \(Self.iterations) mutants were refused with an error, in \(Int(Date().timeIntervalSince(start))) s; slowest: iteration \(slowest.iteration) (\(slowest.name)) \(slowest.seconds) s")
    }
}
