import FerryCopy
import Foundation
import Testing

@testable import FerryTransfer

/// The journal's records across reopenings: segments, the commit record, and the void
/// record that keeps a segment being rewritten from being proven by its old digest.
@Suite struct ResumeJournalTests {
    let a = [UInt8](repeating: 0xA1, count: 32)
    let b = [UInt8](repeating: 0xB2, count: 32)
    let c = [UInt8](repeating: 0xC3, count: 32)

    func open(_ path: String, leaf: LeafHash = .sha256) throws -> ResumeJournal {
        try ResumeJournal(path: path, segmentSize: 1 << 20, diskSize: 4 << 20, name: "d", leaf: leaf)
    }

    func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1 }

    @Test func commitAndVoidRecordsSurviveReopening() throws {
        let path = try Loopback.temporaryDirectory() + "/j"
        let first = try open(path)
        #expect(first.recovered.isEmpty && first.committed == nil)
        try first.append([(0, a), (2, b)])
        try first.appendCommit(digest: c)
        first.closeKeeping()

        let second = try open(path)
        #expect(second.recovered == [0: a, 2: b])
        #expect(second.committed == c)
        let before = size(path)
        // A write straddling segments 0, 1 and 2 voids the two recovered ones, once.
        try second.void((1 << 20) - 65536..<(2 << 20) + 65536)
        try second.void(0..<65536)
        second.closeKeeping()
        #expect(size(path) == before + 2 * ResumeJournal.recordSize)

        let third = try open(path)
        #expect(third.recovered.isEmpty)
        #expect(third.committed == c)
        // The rewritten segment's new digest, journaled later, is what counts.
        try third.append([(0, b)])
        third.closeKeeping()
        #expect(try open(path).recovered == [0: b])
    }

    @Test func journalOfAnotherDiskIsStartedAfresh() throws {
        let path = try Loopback.temporaryDirectory() + "/j"
        let first = try open(path)
        try first.append([(1, a)])
        try first.appendCommit(digest: c)
        first.closeKeeping()
        let other = try ResumeJournal(path: path, segmentSize: 1 << 20, diskSize: 8 << 20, name: "d", leaf: .sha256)
        #expect(other.recovered.isEmpty && other.committed == nil)
    }

    /// Segment digests are over leaves of one kind: a journal kept while the session
    /// hashed blocks with SHA-256 proves nothing to an xxh3 session, and is discarded.
    @Test func journalOfAnotherLeafHashIsDiscarded() throws {
        let path = try Loopback.temporaryDirectory() + "/j"
        let first = try open(path, leaf: .sha256)
        try first.append([(0, a), (1, b)])
        first.closeKeeping()
        let same = try open(path, leaf: .sha256)
        #expect(same.recovered.count == 2)
        same.closeKeeping()
        let other = try open(path, leaf: .xxh3)
        #expect(other.recovered.isEmpty)
    }
}
