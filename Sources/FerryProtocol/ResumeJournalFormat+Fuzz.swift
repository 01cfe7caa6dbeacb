import FerryBinary

/// The entry point of the resume-journal fuzz target (`FuzzTesting/FuzzJournal`) and of the
/// tests that replay its inputs. A journal is hostile input (anyone who could write the file
/// could have written anything): it must parse or throw `FormatError`, and what it parses to
/// must write back to bytes that parse to the same thing.
public enum JournalFuzz {
    public static func run(_ bytes: [UInt8]) throws {
        let contents = try ResumeJournalFormat.parse(bytes)
        // Written back: the header, every recovered segment, the commit, then the clean stop.
        var again = contents.header.bytes
        for index in contents.recovered.keys.sorted() {
            again += ResumeJournalFormat.record(index, contents.recovered[index] ?? [])
        }
        if let committed = contents.committed { again += ResumeJournalFormat.record(ResumeJournalFormat.commitIndex, committed) }
        if let closed = contents.closedAt { again += ResumeJournalFormat.closedRecord(closed) }
        let reparsed = try ResumeJournalFormat.parse(again)
        guard reparsed.header == contents.header, reparsed.recovered == contents.recovered,
            reparsed.committed == contents.committed, reparsed.closedAt == contents.closedAt
        else {
            throw FuzzFinding("a journal written back from what was parsed parses differently")
        }
        guard contents.validLength <= bytes.count,
            (bytes.count - contents.validLength) < ResumeJournalFormat.recordSize
        else {
            throw FuzzFinding("the parse stopped \(bytes.count - contents.validLength) bytes before the end")
        }
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is FormatError }
}
