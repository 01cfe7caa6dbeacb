import Foundation

/// The libFuzzer package's files as the unit tests see them: the seed corpus each fuzz target
/// starts from (`FuzzTesting/Corpus/<Target>/`, written by the tests that build the seeds from
/// ferry's own fixture builders) and the inputs that once crashed a target
/// (`FuzzTesting/FailCases/<Target>/`, replayed by the same tests as regression cases).
public enum FuzzCorpus {
    /// `FuzzTesting/` in the package checkout.
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzTesting").path

    /// True when FERRY_WRITE_FUZZ_CORPUS=1: the seed tests rewrite `Corpus/`.
    public static var isWriting: Bool { ProcessInfo.processInfo.environment["FERRY_WRITE_FUZZ_CORPUS"] == "1" }

    /// Replaces `Corpus/<target>/` with `seeds` when writing; otherwise does nothing.
    public static func writeSeeds(_ target: String, _ seeds: [(name: String, bytes: [UInt8])]) throws {
        guard isWriting else { return }
        let dir = root + "/Corpus/" + target
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for seed in seeds {
            try Data(seed.bytes).write(to: URL(fileURLWithPath: dir + "/" + seed.name))
        }
        print("fuzz corpus: wrote \(seeds.count) seeds (\(seeds.reduce(0) { $0 + $1.bytes.count }) bytes) to \(dir)")
    }

    /// The files of `Corpus/<target>/` and `FailCases/<target>/`, sorted by path.
    public static func committed(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        var found: [(String, [UInt8])] = []
        for kind in ["Corpus", "FailCases"] {
            let dir = root + "/" + kind + "/" + target
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") {
                found.append(("\(kind)/\(target)/\(name)", Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))))
            }
        }
        return found
    }
}
