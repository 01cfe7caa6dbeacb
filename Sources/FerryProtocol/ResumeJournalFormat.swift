import FerryBinary

/// The journal's bytes, as a pure function of them: `parse` reads a whole journal file
/// (hostile input — anyone who could write the file could have written anything) and
/// `Header.bytes` / `Record` write it. No I/O here, so the parser can be fuzzed.
///
/// ```
///  header (version 3, big-endian):
///   0 magic "FRRYJRNL" | 8 version u16 | 10 segment size u32 | 14 leaf hash u8 (0 sha256, 1 xxh3, 2 keyed xxh3)
///   | 15 disk index u32 | 19 disk count u32 | 23 disk size u64 | 31 sector size u32
///   | 35 target kind u8 (0 regular file, 1 block device)
///   | 36 target device u64 (st_dev of a file, st_rdev of a block device) | 44 inode u64 (0 for a device)
///   | 52 target size u64 | 60 name length u16 | 62 name (UTF-8, at most 1024 bytes)
///  records (40 bytes each): index u64 | 32 bytes
///   segment: index < segment count | segment digest (SHA-256 over the segment's 32-byte leaves)
///   void:    index < segment count | 32 zero bytes   (the segment is being rewritten)
///   commit:  2^64 − 1              | disk digest      (the disk was verified and committed)
///   closed:  2^64 − 2              | target mtime: seconds i64, nanoseconds u32, 20 zero bytes
///   key:     2^64 − 3              | the leaf key (leaf hash 2, keyed xxh3: the first record)
/// ```
/// The last record of a segment wins. A `closed` record says what the target's mtime was
/// when a run stopped cleanly; any later record cancels it (a run that died by kill -9
/// leaves none, and the target's mtime is then unknown). A torn last record is ignored.
public enum ResumeJournalFormat {
    /// The block size segments are made of (FerryCopy's `DiskDigest.blockSize`).
    public static let blockSize = 64 << 10
    public static let magic = Array("FRRYJRNL".utf8)
    public static let version: UInt16 = 3
    public static let recordSize = 40
    public static let maxNameBytes = 1024
    /// The record index that marks the disk committed (no segment has it).
    public static let commitIndex = UInt64.max
    /// The record index of a clean stop, with the target's mtime.
    public static let closedIndex = UInt64.max - 1
    /// The record index of the leaf key of a keyed-xxh3 journal (written once, first).
    public static let keyIndex = UInt64.max - 2
    public static let voidDigest = [UInt8](repeating: 0, count: 32)

    /// What a journal is bound to: the disk as the sender described it, the session's
    /// resume parameters, and the target it was written for.
    public struct Header: Sendable, Equatable {
        public var segmentSize: UInt32
        public var leaf: LeafHashCode
        public var diskIndex: UInt32
        public var diskCount: UInt32
        public var diskSize: UInt64
        public var sectorSize: UInt32
        public var name: [UInt8]
        public var target: TargetIdentity

        /// Bytes before the name.
        public static let fixedSize = 62

        public init(
            segmentSize: UInt32, leaf: LeafHashCode, diskIndex: UInt32, diskCount: UInt32, diskSize: UInt64,
            sectorSize: UInt32, name: [UInt8], target: TargetIdentity
        ) {
            self.segmentSize = segmentSize
            self.leaf = leaf
            self.diskIndex = diskIndex
            self.diskCount = diskCount
            self.diskSize = diskSize
            self.sectorSize = sectorSize
            self.name = name
            self.target = target
        }

        /// The header without the target: what a rerun of the same session expects.
        public var session: Header {
            var copy = self
            copy.target = TargetIdentity(kind: .regularFile, device: 0, inode: 0, size: 0)
            return copy
        }

        public var bytes: [UInt8] {
            var w = ByteWriter()
            w.write(bytes: ResumeJournalFormat.magic)
            w.writeBigEndian(ResumeJournalFormat.version)
            w.writeBigEndian(segmentSize)
            w.writeBigEndian(leaf.rawValue)
            w.writeBigEndian(diskIndex)
            w.writeBigEndian(diskCount)
            w.writeBigEndian(diskSize)
            w.writeBigEndian(sectorSize)
            w.writeBigEndian(target.kind.rawValue)
            w.writeBigEndian(target.device)
            w.writeBigEndian(target.inode)
            w.writeBigEndian(target.size)
            let name = name.prefix(ResumeJournalFormat.maxNameBytes)
            w.writeBigEndian(UInt16(name.count))
            w.write(bytes: name)
            return w.bytes
        }

        /// The number of segments of the disk (overflow-safe for any parsed size).
        public var segmentCount: UInt64 {
            let size = UInt64(segmentSize)
            guard size > 0 else { return 0 }
            return diskSize / size + (diskSize % size == 0 ? 0 : 1)
        }
    }

    public enum LeafHashCode: UInt8, Sendable, Equatable {
        case sha256 = 0
        case xxh3 = 1
        /// XXH3 under a delta-sync session's key, which the journal's first `key` record
        /// holds: a rerun hashes with it, so what the journal records can still be proven.
        case xxh3Keyed = 2
    }

    /// Which file or device a journal describes. A regular file is its (st_dev, st_ino) and
    /// size; a block device its st_rdev and size (its inode lives in devtmpfs, which says
    /// nothing about the disk behind it).
    public struct TargetIdentity: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: UInt8, Sendable { case regularFile = 0, blockDevice = 1 }
        public var kind: Kind
        public var device: UInt64
        public var inode: UInt64
        public var size: UInt64

        public init(kind: Kind, device: UInt64, inode: UInt64, size: UInt64) {
            self.kind = kind
            self.device = device
            self.inode = inode
            self.size = size
        }

        public var description: String {
            switch kind {
            case .regularFile: "file \(device):\(inode) of \(size) bytes"
            case .blockDevice: "block device \(Self.majorMinor(device)) of \(size) bytes"
            }
        }

        /// Linux's dev_t encoding (glibc's gnu_dev_major/minor).
        public static func majorMinor(_ dev: UInt64) -> String {
            let major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~UInt64(0xFFF))
            let minor = (dev & 0xFF) | ((dev >> 12) & ~UInt64(0xFF))
            return "\(major):\(minor)"
        }
    }

    /// A modification time, to the nanosecond.
    public struct Timestamp: Sendable, Equatable {
        public var seconds: Int64
        public var nanoseconds: UInt32

        public init(seconds: Int64, nanoseconds: UInt32) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
        }
    }

    /// A parsed journal.
    public struct Contents: Sendable, Equatable {
        public var header: Header
        /// Segments journaled (and not voided since), with their digests.
        public var recovered: [UInt64: [UInt8]]
        /// The disk digest of a commit, if one is recorded.
        public var committed: [UInt8]?
        /// The target's mtime at the last clean stop, if no record followed it.
        public var closedAt: Timestamp?
        /// The leaf key of a keyed-xxh3 journal (its first `key` record).
        public var leafKey: [UInt8]?
        /// Bytes up to the end of the last whole record (a torn tail is cut here).
        public var validLength: Int
    }

    /// Parses a whole journal file. Throws `FormatError` for anything that is not a
    /// version-3 journal with a sane header; records past the header are checked one by
    /// one (an index outside the disk is ignored, as is a torn last record).
    public static func parse(_ bytes: [UInt8]) throws -> Contents {
        var r = ByteReader(bytes, structure: "resume journal")
        guard try r.readBytes(magic.count, field: "magic") == magic else {
            throw FormatError(.badMagic, structure: "resume journal", field: "magic", offset: 0, "not a ferry resume journal")
        }
        let version = try r.readBigEndian(UInt16.self, "version")
        guard version == Self.version else {
            throw FormatError(
                .unsupportedVersion, structure: "resume journal", field: "version", offset: 8,
                "version \(version); this ferry writes version \(Self.version)")
        }
        let segmentSize = try r.readBigEndian(UInt32.self, "segment size")
        guard segmentSize > 0, segmentSize % UInt32(blockSize) == 0 else {
            throw FormatError(
                .outOfRange, structure: "resume journal", field: "segment size", offset: 10,
                "\(segmentSize) is not a whole number of 64 KiB blocks")
        }
        guard let leaf = LeafHashCode(rawValue: try r.readUInt8("leaf hash")) else {
            throw FormatError(.unsupportedFeature, structure: "resume journal", field: "leaf hash", offset: 14, "unknown block hash")
        }
        let diskIndex = try r.readBigEndian(UInt32.self, "disk index")
        let diskCount = try r.readBigEndian(UInt32.self, "disk count")
        let diskSize = try r.readBigEndian(UInt64.self, "disk size")
        let sectorSize = try r.readBigEndian(UInt32.self, "sector size")
        guard let kind = TargetIdentity.Kind(rawValue: try r.readUInt8("target kind")) else {
            throw FormatError(.outOfRange, structure: "resume journal", field: "target kind", offset: 35, "unknown target kind")
        }
        let device = try r.readBigEndian(UInt64.self, "target device")
        let inode = try r.readBigEndian(UInt64.self, "inode")
        let targetSize = try r.readBigEndian(UInt64.self, "target size")
        let nameLength = Int(try r.readBigEndian(UInt16.self, "name length"))
        guard nameLength <= maxNameBytes else {
            throw FormatError(
                .limitExceeded, structure: "resume journal", field: "name length", offset: 60,
                "\(nameLength) bytes, over the \(maxNameBytes)-byte limit")
        }
        let name = try r.readBytes(nameLength, field: "name")
        let header = Header(
            segmentSize: segmentSize, leaf: leaf, diskIndex: diskIndex, diskCount: diskCount, diskSize: diskSize,
            sectorSize: sectorSize, name: name,
            target: TargetIdentity(kind: kind, device: device, inode: inode, size: targetSize))

        var contents = Contents(header: header, recovered: [:], committed: nil, closedAt: nil, validLength: r.position)
        let segments = header.segmentCount
        while r.remaining >= recordSize {
            let index = try r.readBigEndian(UInt64.self, "record index")
            let payload = try r.readBytes(32, field: "record digest")
            switch index {
            case commitIndex:
                contents.committed = payload
                contents.closedAt = nil
            case keyIndex:
                // Only the first counts: a journal's key never changes.
                if header.leaf == .xxh3Keyed, contents.leafKey == nil { contents.leafKey = payload }
            case closedIndex:
                var p = ByteReader(payload, structure: "closed record")
                let seconds = try p.readBigEndian(Int64.self, "seconds")
                let nanoseconds = try p.readBigEndian(UInt32.self, "nanoseconds")
                contents.closedAt = nanoseconds < 1_000_000_000 ? Timestamp(seconds: seconds, nanoseconds: nanoseconds) : nil
            case ..<segments:
                contents.recovered[index] = payload == voidDigest ? nil : payload
                contents.closedAt = nil
            default:
                contents.closedAt = nil  // a record for no segment of this disk: ignored
            }
            contents.validLength = r.position
        }
        return contents
    }

    /// One 40-byte record.
    public static func record(_ index: UInt64, _ payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: recordSize)
        w.writeBigEndian(index)
        w.write(bytes: payload.prefix(32))
        if payload.count < 32 { w.writeZeros(32 - payload.count) }
        return w.bytes
    }

    public static func closedRecord(_ mtime: Timestamp) -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.writeBigEndian(mtime.seconds)
        w.writeBigEndian(mtime.nanoseconds)
        w.writeZeros(20)
        return record(closedIndex, w.bytes)
    }
}
