import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@testable import FerryFormats

/// The VHDX log replay must depend on the log alone. It used to take the first chain
/// a Dictionary yielded among those ending at the newest entry, so an image whose active
/// sequence had several entries opened or was refused ("the newest log entry's tail …
/// is not the start of its sequence") depending on the process's hash seed.
@Suite struct VHDXLogDeterminismTests {
    /// The same writes logged as one entry, as several entries sharing a tail, wrapped
    /// around the end of the log, and beside an older inactive entry: every layout opens
    /// to the same disk as qemu's replay of the single-entry log.
    @Test func everyLayoutOfOneLogReplaysTheSame() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 8 << 20, seed: 93, density: 0.7)
        try RawFixture.poke(raw, at: 3 << 20, [UInt8](repeating: 0, count: 1 << 20))  // block 3 stays unallocated
        let clean = dir.file("clean.vhdx")
        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, clean)
        let cleanBytes = try Data(contentsOf: URL(fileURLWithPath: clean)).map { $0 }
        let layouts: [(String, VHDXLogBuilder.Layout)] = [
            ("one entry", .init()),
            ("three entries", .init(entries: 3)),
            ("five entries at sector 40", .init(entries: 5, startSector: 40)),
            ("four entries wrapping the log's end", .init(entries: 4, startSector: 254)),
            ("three entries and an older one", .init(entries: 3, startSector: 8, staleSector: 100)),
        ]
        var oracle: String?
        for (label, layout) in layouts {
            var rng = SeededRandom(seed: 93)
            guard let built = try VHDXLogBuilder.dirty(clean: cleanBytes, rng: &rng, layout: layout) else {
                Issue.record("the fixture needs one present and one absent block")
                return
            }
            let image = dir.file("dirty-\(layout.entries)-\(layout.startSector).vhdx")
            try Data(built.bytes).write(to: URL(fileURLWithPath: image))
            if oracle == nil {
                // qemu replays the single-entry log on a copy; that disk is what every layout means.
                let repaired = dir.file("repaired.vhdx")
                try Data(built.bytes).write(to: URL(fileURLWithPath: repaired))
                try Tool.run(Tool.qemuImg, ["check", "-r", "all", "-f", "vhdx", repaired], expectSuccess: false)
                oracle = dir.file("oracle.raw")
                try Tool.qemu("convert", "-f", "vhdx", "-O", "raw", repaired, dir.file("oracle.raw"))
            }
            // Opened several times: the answer may not change from one open to the next.
            for attempt in 0..<3 {
                let disk = try DiskImage.openSource(image)
                #expect(try Compare.firstDifference(disk, rawPath: oracle ?? "") == nil, "\(label), open \(attempt)")
            }
        }
    }

    /// A separate process per hash seed, including `SWIFT_DETERMINISTIC_HASHING=1` (with
    /// which the old search refused the image every time): `ferry checksum` prints one digest.
    @Test func theDigestDoesNotDependOnTheHashSeed() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 8 << 20, seed: 94, density: 0.7)
        try RawFixture.poke(raw, at: 3 << 20, [UInt8](repeating: 0, count: 1 << 20))
        let clean = dir.file("clean.vhdx")
        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, clean)
        var rng = SeededRandom(seed: 94)
        let layout = VHDXLogBuilder.Layout(entries: 5, startSector: 3)
        guard let built = try VHDXLogBuilder.dirty(clean: try Data(contentsOf: URL(fileURLWithPath: clean)).map { $0 }, rng: &rng, layout: layout) else {
            Issue.record("the fixture needs one present and one absent block")
            return
        }
        let image = dir.file("dirty.vhdx")
        try Data(built.bytes).write(to: URL(fileURLWithPath: image))
        var digests: Set<String> = []
        for environment in ["SWIFT_DETERMINISTIC_HASHING=1", "SWIFT_DETERMINISTIC_HASHING=", "FERRY_RUN=2", "FERRY_RUN=3"] {
            let result = try Tools.run("/usr/bin/env", [environment, FerryExecutable.path, "checksum", image, "--progress", "none"])
            #expect(result.status == 0, "\(environment): \(result.stderr)")
            digests.insert(String(result.stdout.split(separator: " ").first ?? ""))
        }
        #expect(digests.count == 1, "one image, one digest: \(digests)")
    }
}
