public import FerryDisk
import FerryBinary
import FerryPartitions
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The undo file of a fix: the original bytes of every range `ferry fix` wrote, each record
/// made durable *before* the write it guards, so a fix cut at any point (a crash, kill -9,
/// a full disk) can be undone byte for byte with `ferry fix --undo FILE DISK`.
///
/// ```
///  header   "FRYUNDO1" | disk size u64 LE | name length u16 LE | name (UTF-8)
///  record   "REC1" | offset u64 | length u32 | CRC-32 of the new bytes u32 |
///           original bytes [length] | CRC-32 of everything before it in the record u32
/// ```
/// A record cut short by a crash (its CRC missing or wrong) is the last one and guards a
/// write that never started: the record is synced before the write is issued.
public enum UndoFormat {
    public static let magic: [UInt8] = Array("FRYUNDO1".utf8)
    static let recordMagic: [UInt8] = Array("REC1".utf8)
    /// Bigger writes are refused: a fix writes hives and metadata, never gigabytes.
    public static let maxRecordBytes = 64 << 20
    public static let maxNameBytes = 4096

    public struct Record: Sendable, Equatable {
        public var offset: UInt64
        public var original: [UInt8]
        public var newCRC: UInt32
    }

    public static func header(diskSize: UInt64, name: String) -> [UInt8] {
        var w = ByteWriter()
        w.write(bytes: magic)
        w.writeLittleEndian(diskSize)
        let nameBytes = Array(name.utf8.prefix(maxNameBytes))
        w.writeLittleEndian(UInt16(nameBytes.count))
        w.write(bytes: nameBytes)
        return w.bytes
    }

    public static func record(offset: UInt64, original: [UInt8], new: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.write(bytes: recordMagic)
        w.writeLittleEndian(offset)
        w.writeLittleEndian(UInt32(original.count))
        w.writeLittleEndian(CRC32.checksum(new))
        w.write(bytes: original)
        w.writeLittleEndian(CRC32.checksum(w.bytes))
        return w.bytes
    }

    /// Parses an undo file: the disk size it belongs to and its complete records, in the
    /// order they were written. Throws on a bad header or a damaged record that is not the last.
    public static func parse(_ bytes: [UInt8], path: String) throws -> (diskSize: UInt64, name: String, records: [Record]) {
        var r = ByteReader(bytes, structure: "undo file \(path)")
        guard (try? r.readBytes(8, field: "magic")) == magic else {
            throw FixError(.badUndo, "\(path) is not a ferry undo file (no FRYUNDO1 header)")
        }
        let size = try r.readLittleEndian(UInt64.self, "disk size")
        let nameLength = Int(try r.readLittleEndian(UInt16.self, "name length"))
        let name = String(decoding: try r.readBytes(nameLength, field: "name"), as: UTF8.self)
        var records: [Record] = []
        while r.remaining > 0 {
            let start = r.position
            guard r.remaining >= 24, (try r.readBytes(4, field: "record magic")) == recordMagic else {
                throw FixError(.badUndo, "\(path): damaged record at byte \(start)")
            }
            let offset = try r.readLittleEndian(UInt64.self, "offset")
            let length = Int(try r.readLittleEndian(UInt32.self, "length"))
            let newCRC = try r.readLittleEndian(UInt32.self, "new CRC")
            guard length <= maxRecordBytes else { throw FixError(.badUndo, "\(path): record at byte \(start) claims \(length) bytes") }
            guard r.remaining >= length + 4 else { break }  // cut by a crash: its write never started
            let original = try r.readBytes(length, field: "original bytes")
            let crc = try r.readLittleEndian(UInt32.self, "record CRC")
            guard crc == CRC32.checksum(bytes[start..<r.position - 4]) else {
                if r.remaining == 0 { break }  // the last record, torn
                throw FixError(.badUndo, "\(path): record at byte \(start) fails its CRC")
            }
            records.append(Record(offset: offset, original: original, newCRC: newCRC))
        }
        return (size, name, records)
    }
}

/// An append-only undo file on the local file system, synced after each record.
public final class UndoFile: Sendable {
    public let path: String
    private let fd: Mutex<FileDescriptor?>

    /// Creates `path` (never replaces a file: an undo file is the only copy of what was there).
    public init(creating path: String, for disk: any BlockDevice) throws {
        self.path = path
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .append, .noFollow],
                permissions: [.ownerReadWrite])
        } catch let e as Errno where e == .fileExists {
            throw DiskError(.exists, path, operation: "create", "an undo file is already there (from an earlier fix?); keep it, or name another with --undo-file")
        } catch {
            throw DiskError.system((error as? Errno)?.rawValue ?? EIO, path, operation: "create")
        }
        fd = Mutex(descriptor)
        try append(UndoFormat.header(diskSize: disk.size, name: disk.name))
        Self.syncDirectory(of: path)
    }

    func append(_ bytes: [UInt8]) throws {
        try fd.withLock { fd in
            guard let fd else { throw DiskError(.closed, path, operation: "write undo file", "closed") }
            do { _ = try fd.writeAll(bytes) } catch {
                throw DiskError.system((error as? Errno)?.rawValue ?? EIO, path, operation: "write undo file")
            }
            if fsync(fd.rawValue) != 0 { throw DiskError.system(errno, path, operation: "fsync undo file") }
        }
    }

    public func close() {
        fd.withLock { fd in
            try? fd?.close()
            fd = nil
        }
    }

    static func syncDirectory(of path: String) {
        let dir = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) : "."
        if let d = try? FileDescriptor.open(FilePath(dir.isEmpty ? "/" : dir), .readOnly) {
            _ = fsync(d.rawValue)
            try? d.close()
        }
    }
}

/// A disk whose every write first saves the bytes it replaces to an undo file.
public final class UndoRecordingDevice: BlockDevice {
    public let base: any BlockDevice
    public let undo: UndoFile
    public var name: String { base.name }
    public var size: UInt64 { base.size }
    public var logicalSectorSize: Int { base.logicalSectorSize }
    public var capabilities: DiskCapabilities { base.capabilities }
    /// For the crash test only: after this many writes the process kills itself (SIGKILL),
    /// as a power cut between two sector writes would stop it.
    let killAfterWrites: Int?
    private let counters = Mutex((writes: 0, bytes: UInt64(0)))

    public init(_ base: any BlockDevice, undo: UndoFile, killAfterWrites: Int? = nil) {
        self.base = base
        self.undo = undo
        self.killAfterWrites = killAfterWrites
    }

    /// Writes made and bytes written so far.
    public var written: (writes: Int, bytes: UInt64) { counters.withLock { $0 } }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try base.read(into: buffer, at: offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard buffer.count <= UndoFormat.maxRecordBytes else {
            throw DiskError(.unsupported, name, operation: "write", "a \(buffer.count)-byte write is larger than a fix makes; refused")
        }
        let original = try base.readBytes(at: offset, count: buffer.count)
        let new = Array(buffer)
        if original == new { return }
        try undo.append(UndoFormat.record(offset: offset, original: original, new: new))
        let count = counters.withLock { c -> Int in
            c.writes += 1
            c.bytes += UInt64(new.count)
            return c.writes
        }
        if let killAfterWrites, count > killAfterWrites { kill(getpid(), SIGKILL) }
        try base.write(buffer, at: offset)
    }

    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try writeZeroBytes(self, at: offset, length: length)
    }

    public func flush() throws { try base.flush() }
}

/// `ferry fix --undo`: puts back the original bytes an undo file recorded.
public enum UndoRestore {
    public struct Result: Sendable, Equatable {
        public var records: Int
        public var bytes: UInt64
        /// Records whose range already held the original bytes (their write never happened).
        public var alreadyOriginal: Int
    }

    /// Restores `disk` from the undo file at `path`. Every range is checked first: it must hold
    /// either what the fix wrote or the original; anything else means the disk changed after
    /// the fix (a boot, another tool), and nothing is written unless `force`.
    public static func restore(_ disk: any BlockDevice, from path: String, force: Bool = false) throws -> Result {
        let bytes: [UInt8]
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.noFollow])
            defer { try? fd.close() }
            let size = Int(try fd.seek(offset: 0, from: .end))
            guard size <= 1 << 30 else { throw FixError(.badUndo, "\(path) is \(size) bytes; no fix writes that much") }
            var buffer = [UInt8](repeating: 0, count: size)
            let n = try buffer.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: 0, into: $0) }
            bytes = Array(buffer[0..<n])
        } catch let e as Errno {
            throw DiskError.system(e.rawValue, path, operation: "open")
        }
        let undo = try UndoFormat.parse(bytes, path: path)
        guard undo.diskSize == disk.size else {
            throw FixError(.badUndo, "\(path) was made for a \(undo.diskSize)-byte disk (\(undo.name)); \(disk.name) has \(disk.size) bytes")
        }
        // Check newest first against the disk as it will be once the newer records are undone:
        // where writes overlap, an older range holds its new bytes only under the newer originals.
        var changedSince: [UInt64] = []
        var alreadyOriginal = 0
        var undone: [UndoFormat.Record] = []
        for record in undo.records.reversed() {
            var now = try disk.readBytes(at: record.offset, count: record.original.count)
            for newer in undone { overlay(newer, onto: &now, at: record.offset) }
            if now == record.original { alreadyOriginal += 1 } else if CRC32.checksum(now) != record.newCRC { changedSince.append(record.offset) }
            undone.append(record)
        }
        if !changedSince.isEmpty, !force {
            throw FixError(.refused, "\(disk.name) changed after the fix at \(changedSince.count) of \(undo.records.count) recorded ranges (first at byte \(changedSince[0])): was the guest booted? Nothing restored; --force restores anyway")
        }
        var total: UInt64 = 0
        // Newest first: where a range was written twice, the first record holds the true original.
        for record in undo.records.reversed() {
            try record.original.withUnsafeBytes { try disk.write($0, at: record.offset) }
            total += UInt64(record.original.count)
        }
        try disk.flush()
        return Result(records: undo.records.count, bytes: total, alreadyOriginal: alreadyOriginal)
    }

    /// Copies the part of `record`'s original bytes that falls in `bytes` (which start at `offset`).
    static func overlay(_ record: UndoFormat.Record, onto bytes: inout [UInt8], at offset: UInt64) {
        let start = max(offset, record.offset)
        let end = min(offset + UInt64(bytes.count), record.offset + UInt64(record.original.count))
        guard start < end else { return }
        for position in start..<end { bytes[Int(position - offset)] = record.original[Int(position - record.offset)] }
    }
}
