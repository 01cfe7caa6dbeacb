import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@testable import FerryTransfer

extension InProcessNetwork {
/// A resume proves the journal against the target itself: a target changed between
/// the two runs is caught by re-reading it (and only what changed is sent again), a
/// target that is not the file the journal was written for discards the journal, and
/// a journal file that is a symbolic link or another user's is refused.
@Suite(.serialized) struct ResumeProofTests {
    let resume = ResumeTests()
    static let size = ResumeTests.size

    /// The first journaled segment of the cut transfer in `dir`.
    func firstJournaledSegment(_ dir: String) throws -> UInt64 {
        let bytes = try #require(Loopback.read(dir + "/.dst.img.ferry-journal"))
        let contents = try ResumeJournal.parse(bytes)
        return try #require(contents.recovered.keys.min())
    }

    /// Flips a byte of `path` at `offset`; with `keepingMTime`, puts the mtime back, so
    /// only reading the data can tell.
    func corrupt(_ path: String, at offset: UInt64, keepingMTime: Bool) throws {
        var st = stat()
        #expect(stat(path, &st) == 0)
        let fd = open(path, O_RDWR)
        #expect(fd >= 0)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, off_t(offset)) == 1)
        byte ^= 0xFF
        #expect(pwrite(fd, &byte, 1, off_t(offset)) == 1)
        close(fd)
        if keepingMTime {
            var times = [st.st_atim, st.st_mtim]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
    }

    func dataSent(_ summary: TransferSummary) -> UInt64 { summary.disks.first?.dataBytes ?? 0 }

    @Test func targetChangedBetweenRunsIsResentFromTheChangedSegment() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 31)
        try await resume.interruptedTransfer(dir)
        let segment = try firstJournaledSegment(dir)
        try corrupt(dir + "/.dst.img.ferry-partial", at: segment * (1 << 20) + 1000, keepingMTime: true)
        let sent = try await resume.finish(dir)
        #expect(Loopback.read(dir + "/dst.img") == bytes)
        // Still a resume: the other journaled segments were proven, the changed one resent.
        #expect(dataSent(sent) < UInt64(Self.size) - (2 << 20), "sent \(dataSent(sent))")
        #expect(sent.disks.first?.digest == (try Loopback.digest(of: dir + "/src.img")))
    }

    @Test func targetWrittenAfterTheJournalClosedDiscardsIt() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 32)
        try await resume.interruptedTransfer(dir)
        try corrupt(dir + "/.dst.img.ferry-partial", at: 5, keepingMTime: false)
        let sent = try await resume.finish(dir)
        #expect(Loopback.read(dir + "/dst.img") == bytes)
        #expect(dataSent(sent) == UInt64(Self.size), "a journal of a modified target must not be used")
    }

    /// The partial file replaced by a copy of itself (same bytes, another inode): the
    /// journal describes another file and is discarded; the whole disk is sent.
    @Test func journalOfAnotherTargetFileIsDiscarded() async throws {
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 33)
        try await resume.interruptedTransfer(dir)
        let partial = dir + "/.dst.img.ferry-partial"
        try FileManager.default.copyItem(atPath: partial, toPath: dir + "/copy")
        try FileManager.default.removeItem(atPath: partial)
        try FileManager.default.moveItem(atPath: dir + "/copy", toPath: partial)
        let sent = try await resume.finish(dir)
        #expect(Loopback.read(dir + "/dst.img") == bytes)
        #expect(dataSent(sent) == UInt64(Self.size))
    }

    /// Runs one transfer expected to fail on the receiver; returns the receiver's error.
    func failingTransfer(_ dir: String) async throws -> String {
        let (receiver, port) = try await Loopback.startReceiver(resume.receiverConfig(dir))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.compress = .none
        await #expect(throws: TransferError.self) {
            _ = try await TransferSender.run(sources: [try FileDevice.openForReading(dir + "/src.img")], sc)
        }
        do {
            _ = try await receiver.value
            Issue.record("the receiver succeeded")
            return ""
        } catch let error as TransferError {
            return error.message
        }
    }

    @Test func symbolicLinkJournalIsRefusedAndNothingIsWritten() async throws {
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 34)
        _ = FileManager.default.createFile(atPath: dir + "/victim", contents: Data("precious".utf8))
        try FileManager.default.createSymbolicLink(atPath: dir + "/.dst.img.ferry-journal", withDestinationPath: dir + "/victim")
        let message = try await failingTransfer(dir)
        #expect(message.contains("symbolic link"), "\(message)")
        #expect(Loopback.read(dir + "/victim") == Array("precious".utf8))
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-partial"))
    }

    @Test func journalOwnedByAnotherUserIsRefused() async throws {
        guard Tools.requireRoot("chown to another owner") else { return }
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeRandomDisk(at: dir + "/src.img", size: Self.size, seed: 35)
        let journal = dir + "/.dst.img.ferry-journal"
        _ = FileManager.default.createFile(atPath: journal, contents: Data("someone else's".utf8))
        #expect(chown(journal, 12345, 12345) == 0)
        let message = try await failingTransfer(dir)
        #expect(message.contains("owned by uid 12345"), "\(message)")
        #expect(Loopback.read(journal) == Array("someone else's".utf8))
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
    }
}
}
