import FerryBinary
import FerryDisk
import FerryFix
import FerryTestSupport
import Foundation
import Testing

/// The undo file of `ferry fix`: every original byte saved before it is overwritten, restored
/// byte for byte, refused when the disk changed since.
@Suite struct UndoTests {
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ferry-undo-\(UUID().uuidString)-\(name)").path
    }

    static func disk(seed: UInt64) -> (MemoryDevice, [UInt8]) {
        var rng = SeededGenerator(seed: seed)
        let bytes = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return (MemoryDevice(name: "disk", bytes: bytes), bytes)
    }

    @Test func overlappingWritesAreRestoredByteForByte() throws {
        let seed = Fuzz.seed("undo")
        var rng = SeededGenerator(seed: seed &+ 1)
        let (disk, original) = Self.disk(seed: seed)
        let path = Self.temporaryPath("overlap")
        defer { unlink(path) }
        let undo = try UndoFile(creating: path, for: disk)
        let recorder = UndoRecordingDevice(disk, undo: undo)
        for _ in 0..<200 {
            let offset = UInt64.random(in: 0..<(1 << 20) - 8192, using: &rng)
            let bytes = (0..<Int.random(in: 1...8192, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try bytes.withUnsafeBytes { try recorder.write($0, at: offset) }
        }
        undo.close()
        #expect(try disk.readBytes(at: 0, count: 1 << 20) != original)
        let result = try UndoRestore.restore(disk, from: path)
        #expect(result.records == recorder.written.writes)
        #expect(try disk.readBytes(at: 0, count: 1 << 20) == original, "seed \(seed)")
    }

    /// A crash between the record and its write leaves a record whose range still holds the
    /// original; a record cut short guards a write that never started. Both restore cleanly.
    @Test func aTornLastRecordAndAWriteThatNeverHappenedRestore() throws {
        let (disk, original) = Self.disk(seed: 7)
        let path = Self.temporaryPath("torn")
        defer { unlink(path) }
        let undo = try UndoFile(creating: path, for: disk)
        let recorder = UndoRecordingDevice(disk, undo: undo)
        try [UInt8](repeating: 0xAB, count: 4096).withUnsafeBytes { try recorder.write($0, at: 8192) }
        undo.close()
        // A record for a write that did not happen, then half of another.
        let pending = UndoFormat.record(offset: 65536, original: original[65536..<65536 + 512].map { $0 }, new: [UInt8](repeating: 1, count: 512))
        let torn = UndoFormat.record(offset: 0, original: Array(original[0..<512]), new: [UInt8](repeating: 2, count: 512))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(pending + torn.prefix(300)))
        try handle.close()
        let result = try UndoRestore.restore(disk, from: path)
        #expect(result.records == 2)
        #expect(result.alreadyOriginal == 1)
        #expect(try disk.readBytes(at: 0, count: 1 << 20) == original)
    }

    @Test func aDiskChangedAfterTheFixIsNotRestoredWithoutForce() throws {
        let (disk, original) = Self.disk(seed: 9)
        let path = Self.temporaryPath("changed")
        defer { unlink(path) }
        let undo = try UndoFile(creating: path, for: disk)
        let recorder = UndoRecordingDevice(disk, undo: undo)
        try [UInt8](repeating: 0xAB, count: 512).withUnsafeBytes { try recorder.write($0, at: 4096) }
        undo.close()
        // The guest booted and wrote there again.
        try [UInt8](repeating: 0xCD, count: 16).withUnsafeBytes { try disk.write($0, at: 4100) }
        let changed = try disk.readBytes(at: 0, count: 1 << 20)
        #expect(throws: FixError.self) { try UndoRestore.restore(disk, from: path) }
        #expect(try disk.readBytes(at: 0, count: 1 << 20) == changed, "a refused restore writes nothing")
        _ = try UndoRestore.restore(disk, from: path, force: true)
        #expect(try disk.readBytes(at: 0, count: 1 << 20) == original)
    }

    @Test func anUndoFileIsNeverReplacedNorUsedOnAnotherDisk() throws {
        let (disk, _) = Self.disk(seed: 11)
        let path = Self.temporaryPath("twice")
        defer { unlink(path) }
        let undo = try UndoFile(creating: path, for: disk)
        undo.close()
        #expect(throws: DiskError.self) { _ = try UndoFile(creating: path, for: disk) }
        let other = MemoryDevice(name: "other", size: 4096)
        #expect(throws: FixError.self) { try UndoRestore.restore(other, from: path) }
        let notUndo = Self.temporaryPath("not")
        defer { unlink(notUndo) }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notUndo))
        #expect(throws: FixError.self) { try UndoRestore.restore(disk, from: notUndo) }
    }
}
