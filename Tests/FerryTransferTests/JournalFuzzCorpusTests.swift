import FerryBinary
import FerryProtocol
import FerryTestSupport
import Testing

/// The seed corpus of the resume-journal fuzz target (FuzzTesting/FuzzJournal), made by the
/// journal's own writer, and the replay of every committed seed and crash input.
/// `FERRY_WRITE_FUZZ_CORPUS=1 swift test --filter JournalFuzzCorpusTests` rewrites the corpus.
@Suite struct JournalFuzzCorpusTests {
    static let header = ResumeJournalFormat.Header(
        segmentSize: 4 << 20, leaf: .xxh3, diskIndex: 1, diskCount: 3, diskSize: 50 << 20, sectorSize: 512,
        name: Array("/dev/sda".utf8),
        target: ResumeJournalFormat.TargetIdentity(kind: .regularFile, device: 2049, inode: 1234, size: 50 << 20))

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let h = header.bytes
        let digest = (0..<32).map { UInt8($0) }
        let segments = (0..<4).flatMap { ResumeJournalFormat.record(UInt64($0), digest) }
        let void = ResumeJournalFormat.record(2, ResumeJournalFormat.voidDigest)
        let commit = ResumeJournalFormat.record(ResumeJournalFormat.commitIndex, digest.reversed())
        let closed = ResumeJournalFormat.closedRecord(.init(seconds: 1_764_600_000, nanoseconds: 5))
        var device = header
        device.target = .init(kind: .blockDevice, device: 0x0701, inode: 0, size: 1 << 30)
        device.leaf = .sha256
        return [
            ("header", h), ("segments", h + segments), ("voided", h + segments + void),
            ("committed", h + segments + commit), ("closed", h + segments + closed),
            ("torn", h + segments + Array(commit.prefix(17))), ("device", device.bytes + segments + closed),
        ]
    }

    @Test func seedsParseAndWriteBack() throws {
        for seed in Self.seeds() {
            #expect(throws: Never.self, "\(seed.name)") { try JournalFuzz.run(seed.bytes) }
        }
        let voided = try ResumeJournalFormat.parse(Self.seeds()[2].bytes)
        #expect(voided.recovered.keys.sorted() == [0, 1, 3])
        try FuzzCorpus.writeSeeds("FuzzJournal", Self.seeds())
    }

    @Test func hostileJournalsAreFormatErrors() {
        var bad = Self.header.bytes
        bad[60] = 0xFF  // a name longer than the limit
        #expect(throws: FormatError.self) { try JournalFuzz.run(bad) }
        #expect(throws: FormatError.self) { try JournalFuzz.run(Array(Self.header.bytes.prefix(30))) }
        var zeroSegments = Self.header.bytes
        zeroSegments[10...13] = [0, 0, 0, 0]
        #expect(throws: FormatError.self) { try JournalFuzz.run(zeroSegments) }
    }

    /// Every committed seed and every input that once crashed the target parses, writes back
    /// alike, or fails with a FormatError — never a trap.
    @Test func committedInputsParseOrAreRefused() throws {
        let inputs = try FuzzCorpus.committed("FuzzJournal")
        #expect(!inputs.isEmpty, "no committed corpus for FuzzJournal")
        for input in inputs {
            do {
                try JournalFuzz.run(input.bytes)
            } catch {
                #expect(JournalFuzz.isExpected(error), "\(input.name): \(error)")
            }
        }
    }
}
