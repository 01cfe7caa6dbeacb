import Crypto
import FerryCopy
import FerryProtocol

/// The journal's byte format lives in FerryProtocol (`ResumeJournalFormat`: pure, no I/O,
/// fuzzed by FuzzTesting/FuzzJournal); these are its names as the receiver uses them.
extension ResumeJournal {
    typealias Header = ResumeJournalFormat.Header
    typealias LeafHashCode = ResumeJournalFormat.LeafHashCode
    typealias TargetIdentity = ResumeJournalFormat.TargetIdentity
    typealias Timestamp = ResumeJournalFormat.Timestamp
    typealias Contents = ResumeJournalFormat.Contents

    static var magic: [UInt8] { ResumeJournalFormat.magic }
    static var version: UInt16 { ResumeJournalFormat.version }
    static var recordSize: Int { ResumeJournalFormat.recordSize }
    static var maxNameBytes: Int { ResumeJournalFormat.maxNameBytes }
    static var commitIndex: UInt64 { ResumeJournalFormat.commitIndex }
    static var closedIndex: UInt64 { ResumeJournalFormat.closedIndex }
    static var keyIndex: UInt64 { ResumeJournalFormat.keyIndex }
    static var voidDigest: [UInt8] { ResumeJournalFormat.voidDigest }

    static func parse(_ bytes: [UInt8]) throws -> Contents { try ResumeJournalFormat.parse(bytes) }
    static func record(_ index: UInt64, _ payload: [UInt8]) -> [UInt8] { ResumeJournalFormat.record(index, payload) }
    static func closedRecord(_ mtime: Timestamp) -> [UInt8] { ResumeJournalFormat.closedRecord(mtime) }

    /// SHA-256 over a segment's leaves.
    static func segmentDigest(_ leaves: UnsafeRawBufferPointer) -> [UInt8] {
        Array(SHA256.hash(data: leaves))
    }
}

extension ResumeJournalFormat.LeafHashCode {
    init(_ leaf: LeafHash) {
        switch leaf {
        case .sha256: self = .sha256
        case .xxh3: self = .xxh3
        case .xxh3Keyed: self = .xxh3Keyed
        }
    }
}
