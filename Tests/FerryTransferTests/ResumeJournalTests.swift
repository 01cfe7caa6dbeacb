import FerryBinary
import FerryCopy
import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@testable import FerryTransfer

/// The journal's bytes and records across reopenings (segments, the commit record, the
/// void record that keeps a segment being rewritten from being proven by its old digest,
/// the closed record with the target's mtime), and the safety of opening one.
@Suite struct ResumeJournalTests {
    let a = [UInt8](repeating: 0xA1, count: 32)
    let b = [UInt8](repeating: 0xB2, count: 32)
    let c = [UInt8](repeating: 0xC3, count: 32)

    func header(size: UInt64 = 4 << 20, leaf: LeafHash = .sha256, inode: UInt64 = 7) -> ResumeJournal.Header {
        ResumeJournal.Header(
            segmentSize: 1 << 20, leaf: ResumeJournal.LeafHashCode(leaf), diskIndex: 0, diskCount: 1, diskSize: size,
            sectorSize: 512, name: Array("d".utf8),
            target: ResumeJournal.TargetIdentity(kind: .regularFile, device: 2049, inode: inode, size: size))
    }

    func reopen(_ path: String) throws -> (ResumeJournal.Existing, ResumeJournal.Contents) {
        let found = try #require(try ResumeJournal.existing(at: path))
        return (found, try ResumeJournal.parse(found.bytes))
    }

    func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1 }

    @Test func recordsSurviveReopening() throws {
        let path = try Loopback.temporaryDirectory() + "/j"
        let first = try ResumeJournal.create(at: path, header: header())
        try first.append([(0, a), (2, b)])
        try first.appendCommit(digest: c)
        first.closeKeeping(targetModified: ResumeJournal.Timestamp(seconds: 1_700_000_000, nanoseconds: 5))

        let (found, contents) = try reopen(path)
        #expect(contents.header == header())
        #expect(contents.recovered == [0: a, 2: b])
        #expect(contents.committed == c)
        #expect(contents.closedAt == ResumeJournal.Timestamp(seconds: 1_700_000_000, nanoseconds: 5))
        let second = try found.resume(contents)
        let before = size(path)
        // A write straddling segments 0, 1 and 2 voids the two recovered ones, once.
        try second.void((1 << 20) - 65536..<(2 << 20) + 65536)
        try second.void(0..<65536)
        second.closeKeeping()
        #expect(size(path) == before + 2 * ResumeJournal.recordSize)

        let (found3, third) = try reopen(path)
        #expect(third.recovered.isEmpty)
        #expect(third.committed == c)
        // Records after the closed one: the run that wrote them did not stop cleanly.
        #expect(third.closedAt == nil)
        try found3.resume(third).append([(0, b)])
        #expect(try reopen(path).1.recovered == [0: b])
    }

    @Test func tornLastRecordIsIgnoredAndCut() throws {
        let path = try Loopback.temporaryDirectory() + "/j"
        let journal = try ResumeJournal.create(at: path, header: header())
        try journal.append([(1, a)])
        journal.closeKeeping()
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0, 0, 0, 0, 0, 0, 3, 0xEE]))
        try handle.close()
        let (found, contents) = try reopen(path)
        #expect(contents.recovered == [1: a])
        try found.resume(contents).append([(3, b)])
        #expect(try reopen(path).1.recovered == [1: a, 3: b])
    }

    /// What a rerun compares: the session part of the header (disk, resume parameters,
    /// leaf hash) and, separately, the target's identity.
    @Test func headerBindsDiskLeafHashAndTarget() throws {
        let path = try Loopback.temporaryDirectory() + "/j"
        try ResumeJournal.create(at: path, header: header()).closeKeeping()
        let parsed = try reopen(path).1.header
        #expect(parsed.session == header().session)
        #expect(parsed.session != header(size: 8 << 20).session)
        #expect(parsed.session != header(leaf: .xxh3).session)
        #expect(parsed.session == header(inode: 8).session)
        #expect(parsed.target != header(inode: 8).target)
    }

    /// A keyed-xxh3 journal keeps its session's leaf key (first record), so a rerun hashes
    /// with it; a second key record does not replace it, and an unkeyed journal has none.
    @Test func keyedJournalKeepsItsLeafKey() throws {
        let key = try #require(LeafKey(bytes: (0..<32).map { UInt8($0) }))
        let path = try Loopback.temporaryDirectory() + "/j"
        let journal = try ResumeJournal.create(at: path, header: header(leaf: .xxh3Keyed(key)), key: key)
        try journal.append([(1, a)])
        try journal.append([(ResumeJournal.keyIndex, b)])
        journal.closeKeeping()
        let (found, contents) = try reopen(path)
        #expect(contents.header.leaf == .xxh3Keyed)
        #expect(contents.leafKey == key.bytes)
        #expect(contents.recovered == [1: a])
        #expect(try found.resume(contents).leafKey == key)

        let plain = try Loopback.temporaryDirectory() + "/j"
        let unkeyed = try ResumeJournal.create(at: plain, header: header(leaf: .xxh3))
        try unkeyed.append([(ResumeJournal.keyIndex, b)])
        unkeyed.closeKeeping()
        #expect(try reopen(plain).1.leafKey == nil)
    }

    @Test func hostileBytesAreRefusedWithoutTrapping() throws {
        let good = header().bytes + ResumeJournal.record(0, a)
        #expect(throws: FormatError.self) { try ResumeJournal.parse(Array("NOTAJRNL".utf8) + good.dropFirst(8)) }
        var version = good
        version[9] = 2
        #expect(throws: FormatError.self) { try ResumeJournal.parse(version) }
        var segment = good
        segment[13] = 1  // segment size not a whole number of blocks
        #expect(throws: FormatError.self) { try ResumeJournal.parse(segment) }
        var name = good
        name[60] = 0xFF  // a name longer than the limit
        #expect(throws: FormatError.self) { try ResumeJournal.parse(name) }
        for cut in 0..<ResumeJournal.Header.fixedSize {
            #expect(throws: FormatError.self) { try ResumeJournal.parse(Array(good[0..<cut])) }
        }
        // A record for a segment past the disk's end is ignored.
        let past = try ResumeJournal.parse(header().bytes + ResumeJournal.record(99, a))
        #expect(past.recovered.isEmpty)
    }

    /// A journal path that is a symbolic link is refused, not followed (a root receiver
    /// would otherwise truncate whatever it points to).
    @Test func symbolicLinkJournalIsRefused() throws {
        let dir = try Loopback.temporaryDirectory()
        let victim = dir + "/victim"
        _ = FileManager.default.createFile(atPath: victim, contents: Data("precious".utf8))
        try FileManager.default.createSymbolicLink(atPath: dir + "/j", withDestinationPath: victim)
        #expect(throws: DiskError.self) { _ = try ResumeJournal.existing(at: dir + "/j") }
        #expect(throws: DiskError.self) { _ = try ResumeJournal.create(at: dir + "/j", header: header()) }
        #expect(Loopback.read(victim) == Array("precious".utf8))
    }

    @Test func journalOfAnotherUserOrWithTwoLinksIsRefused() throws {
        let dir = try Loopback.temporaryDirectory()
        let path = dir + "/j"
        try ResumeJournal.create(at: path, header: header()).closeKeeping()
        #expect(link(path, dir + "/second") == 0)
        #expect(throws: DiskError.self) { _ = try ResumeJournal.existing(at: path) }
        unlink(dir + "/second")
        #expect(try ResumeJournal.existing(at: path) != nil)
        guard Tools.requireRoot("the other-owner case chown to another owner") else { return }
        #expect(chown(path, 12345, 12345) == 0)
        #expect(throws: DiskError.self) { _ = try ResumeJournal.existing(at: path) }
    }

    @Test func stateDirectoryIsPrivate() throws {
        let dir = try Loopback.temporaryDirectory()
        let made = try ResumeJournal.privateStateDirectory(dir + "/state")
        var st = stat()
        #expect(stat(made, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(chmod(made, 0o755) == 0)
        #expect(throws: DiskError.self) { _ = try ResumeJournal.privateStateDirectory(made) }
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/real")
        #expect(throws: DiskError.self) { _ = try ResumeJournal.privateStateDirectory(dir + "/link") }
    }
}
