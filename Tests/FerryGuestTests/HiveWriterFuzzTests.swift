import FerryBinary
import FerryRegistry
import FerryTestSupport
import Foundation
import Testing

/// Mutation fuzzing of the editor's input: seeded byte mutations of built hives and of the
/// reader's fuzz corpus, with the base-block checksum repaired so the mutations reach the bins.
/// Each input is either refused with a FormatError/HiveEditError, or edited into a hive that
/// `hivexregedit --export` reads whole (the oracle) and ferry re-opens.
@Suite struct HiveWriterFuzzTests {
    static func mutate(_ input: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
        var bytes = input
        let count = 1 + Int(random.next() % 8)
        for _ in 0..<count {
            // Mostly the bins (cells), sometimes the base block's fields.
            let inBase = random.next() % 10 == 0
            let at = inBase ? Int(random.next() % 48) : 4096 + Int(random.next() % UInt64(bytes.count - 4096))
            switch random.next() % 4 {
            case 0: bytes[at] = UInt8(truncatingIfNeeded: random.next())
            case 1: bytes[at] ^= UInt8(1) << UInt8(random.next() % 8)
            case 2: bytes[at] = [0x00, 0xFF, 0x7F, 0x80][Int(random.next() % 4)]
            default: bytes[at] &+= 1
            }
        }
        var sum: UInt32 = 0
        for i in 0..<127 { sum ^= bytes.littleEndian(UInt32.self, at: i * 4) ?? 0 }
        let checksum = sum == 0 ? 1 : (sum == 0xFFFF_FFFF ? 0xFFFF_FFFE : sum)
        bytes.replaceSubrange(508..<512, with: withUnsafeBytes(of: checksum.littleEndian, Array.init))
        return bytes
    }

    @Test func mutatedHivesAreRefusedOrEditedIntoHivesHivexReads() throws {
        guard Tools.require("hivexregedit", why: "the registry oracle") else { return }
        let seed: UInt64 = 0x0011_2026_1202
        print("mutatedHivesAreRefusedOrEditedIntoHivesHivexReads seed \(seed)")
        var random = SeededRandom(seed: seed)
        var small = HiveBuilder(minorVersion: 5, maxLeafEntries: 3)
        small.set("Select", "Current", .dword(1))
        for i in 0..<6 { small.set("ControlSet001\\Services\\S\(i)", "Start", .dword(UInt32(i))) }
        var bases = [RegistryTests.sampleBuilder().build(), small.build()]
        bases += try FuzzCorpus.committed("FuzzRegistry").map(\.bytes).filter { $0.count > 4096 }
        let dir = try TemporaryDirectory("hive-fuzz")
        var accepted = 0, refused = 0
        for round in 0..<240 {
            let input = Self.mutate(bases[round % bases.count], &random)
            let output: [UInt8]
            do {
                output = try RegistryEditFuzz.run(input)
            } catch {
                #expect(RegistryEditFuzz.isExpected(error), "round \(round): unexpected \(error)")
                refused += 1
                continue
            }
            accepted += 1
            let path = dir.file("round\(round).hive")
            try Data(output).write(to: URL(fileURLWithPath: path))
            let export = try Tools.run("hivexregedit", ["--export", path, "\\"])
            if export.status != 0 {
                let kept = dir.file("round\(round).input")
                try Data(input).write(to: URL(fileURLWithPath: kept))
                Issue.record("round \(round): ferry wrote a hive hivex rejects: \(export.stderr.prefix(300))")
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        print("mutation fuzz: \(accepted) edited, \(refused) refused")
        #expect(accepted >= 40 && refused >= 40, "the mutations reach both outcomes")
    }

    /// The seeds of the FuzzRegistryEdit target (written with FERRY_WRITE_FUZZ_CORPUS=1): hives
    /// whose every key the edits reach; each seed is edited, never refused.
    static func seeds() -> [(name: String, bytes: [UInt8])] {
        var small = HiveBuilder(minorVersion: 5, maxLeafEntries: 3)
        small.set("Select", "Current", .dword(1))
        for i in 0..<6 { small.set("ControlSet001\\Services\\S\(i)", "Start", .dword(UInt32(i))) }
        var old = HiveBuilder(minorVersion: 3)
        old.set("ControlSet001\\Services\\atapi", "Start", .dword(0))
        return [("sample.hive", RegistryTests.sampleBuilder().build()), ("small.hive", small.build()), ("minor3.hive", old.build())]
    }

    @Test func seedCorpusIsEditable() throws {
        let seeds = Self.seeds()
        for seed in seeds {
            let out = try RegistryEditFuzz.run(seed.bytes)
            #expect(try Hive(bytes: out).key("ControlSet001\\Services\\viostor") != nil, "\(seed.name)")
        }
        try FuzzCorpus.writeSeeds("FuzzRegistryEdit", seeds)
        let committed = try FuzzCorpus.committed("FuzzRegistryEdit")
        let stored = Dictionary(uniqueKeysWithValues: committed.filter { $0.name.hasPrefix("Corpus/") }.map { ($0.name, $0.bytes) })
        let fresh = Dictionary(uniqueKeysWithValues: seeds.map { ("Corpus/FuzzRegistryEdit/\($0.name)", $0.bytes) })
        let same = stored == fresh
        #expect(same, "FuzzTesting/Corpus/FuzzRegistryEdit is stale: rerun with FERRY_WRITE_FUZZ_CORPUS=1")
        // Inputs that once failed the target end in the editor's own errors, or in an edit.
        for input in committed where input.name.hasPrefix("FailCases/") {
            do { try RegistryEditFuzz.run(input.bytes) } catch { #expect(RegistryEditFuzz.isExpected(error), "\(input.name): \(error)") }
        }
        // The reader's corpus is editable too.
        for (name, bytes) in try FuzzCorpus.committed("FuzzRegistry") where name.hasPrefix("Corpus/") {
            #expect(throws: Never.self, "\(name)") { try RegistryEditFuzz.run(bytes) }
        }
    }
}
