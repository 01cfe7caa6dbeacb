import FerryDisk
import FerryNTFS
import FerryTestSupport
import Foundation
import Synchronization
import Testing

/// The independent checks every in-place write must pass: ntfs-3g's own tools read the volume.
enum NTFSOracle {
    /// `ntfsfix -n` (no-action mode): exit 0 and none of its complaints.
    static func expectConsistent(_ image: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let fix = try GuestTools.run("ntfsfix", ["-n", image])
        let text = fix.text + fix.stderr
        #expect(fix.status == 0, "ntfsfix -n: \(text)", sourceLocation: sourceLocation)
        for complaint in ["FAILED", "differ", "Correcting", "corrupt", "Error"] {
            #expect(!text.contains(complaint), "ntfsfix -n: \(text)", sourceLocation: sourceLocation)
        }
        #expect(text.contains("processed successfully"), "ntfsfix -n: \(text)", sourceLocation: sourceLocation)
    }

    /// `ntfscat` returns exactly `contents`.
    static func expectContents(_ image: String, _ path: String, _ contents: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let cat = try GuestTools.run("ntfscat", [image, path])
        #expect(cat.status == 0, "ntfscat: \(cat.stderr)", sourceLocation: sourceLocation)
        // A Bool, not `==` inside #expect: Swift Testing would diff two megabyte arrays on failure.
        let same = Array(cat.stdout) == contents
        #expect(same, "ntfscat \(path): \(cat.stdout.count) bytes, expected \(contents.count)\(firstDifference(Array(cat.stdout), contents))",
            sourceLocation: sourceLocation)
    }

    /// What `ntfsinfo -v -F` says about the unnamed $DATA: sizes and run count.
    struct DataInfo: Equatable {
        var dataSize: UInt64
        var allocatedSize: UInt64
        var initializedSize: UInt64
        var runs: Int
    }

    static func dataInfo(_ image: String, _ path: String) throws -> DataInfo? {
        try dataInfo(image, arguments: ["-F", path])
    }

    /// The same for MFT record `inode` (`ntfsinfo -v -i`).
    static func dataInfo(_ image: String, inode: UInt64) throws -> DataInfo? {
        try dataInfo(image, arguments: ["-i", "\(inode)"])
    }

    static func dataInfo(_ image: String, arguments: [String]) throws -> DataInfo? {
        let info = try GuestTools.run("ntfsinfo", ["-v"] + arguments + [image]).text
        guard let range = info.range(of: "Dumping attribute $DATA (0x80)") else { return nil }
        let data = info[range.upperBound...]
        func number(_ label: String) -> UInt64? {
            guard let at = data.range(of: label) else { return nil }
            let digits = data[at.upperBound...].drop { $0 == " " || $0 == "\t" }.prefix { $0.isNumber }
            return UInt64(digits)
        }
        guard let size = number("Data size:"), let allocated = number("Allocated size:"), let initialized = number("Initialized size:"),
            let runsAt = info.range(of: "Total runs: ")
        else { return nil }
        let runs = Int(info[runsAt.upperBound...].prefix { $0.isNumber }) ?? -1
        return DataInfo(dataSize: size, allocatedSize: allocated, initializedSize: initialized, runs: runs)
    }

    /// Mounts the image read-only with ntfs-3g (FUSE, as root) and reads `path`; nil after a
    /// SKIP line when FUSE is not available.
    static func readThroughMount(_ image: String, _ path: String) throws -> [UInt8]? {
        guard Tools.requireRoot("an ntfs-3g FUSE mount") else { return nil }
        let out = image + ".mounted-read"
        defer { try? FileManager.default.removeItem(atPath: out) }
        guard try GuestTools.makeFixture(["ntfs-read", image, path, out]) else { return nil }
        return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> String {
        guard let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else { return "" }
        return ", first difference at byte \(i)"
    }

    /// All four checks for a file after a write.
    static func expectFile(_ image: String, _ path: String, _ contents: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expectConsistent(image, sourceLocation: sourceLocation)
        try expectContents(image, path, contents, sourceLocation: sourceLocation)
        if let mounted = try readThroughMount(image, path) {
            let same = mounted == contents
            #expect(same, "ntfs-3g mount read of \(path): \(mounted.count) bytes\(firstDifference(mounted, contents))", sourceLocation: sourceLocation)
        }
    }
}

/// Wraps the writable device and counts what goes through `write` (the fix's write budget).
final class WriteCountingDevice: BlockDevice {
    let inner: any BlockDevice
    private let counters = Mutex<(bytes: UInt64, calls: Int, flushes: Int)>((0, 0, 0))

    init(_ inner: any BlockDevice) { self.inner = inner }

    var name: String { inner.name }
    var size: UInt64 { inner.size }
    var logicalSectorSize: Int { inner.logicalSectorSize }
    var capabilities: DiskCapabilities { inner.capabilities }
    var bytesWritten: UInt64 { counters.withLock { $0.bytes } }
    var writes: Int { counters.withLock { $0.calls } }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try inner.read(into: buffer, at: offset) }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        counters.withLock {
            $0.bytes += UInt64(buffer.count)
            $0.calls += 1
        }
        try inner.write(buffer, at: offset)
    }

    func flush() throws {
        counters.withLock { $0.flushes += 1 }
        try inner.flush()
    }
}

extension NTFSVolume {
    /// Opens the image, rewrites `path`'s data, closes everything (so the tools see the result).
    static func rewrite(_ image: String, _ path: [String], with contents: [UInt8], placement: NTFSWritePlacement = .inPlace) throws
        -> (NTFSWriteReport, bytesRead: UInt64, bytesWritten: UInt64)
    {
        let reader = ReadCountingDevice(try FileDevice.openForReading(image))
        let writer = WriteCountingDevice(try FileDevice.openForWriting(image))
        defer {
            try? writer.close()
            try? reader.inner.close()
        }
        let volume = try NTFSVolume(device: reader)
        guard let number = try volume.lookup(path) else { throw FixtureError(message: "\(path) not found") }
        let report = try volume.replaceContents(ofRecord: number, with: contents, on: writer, placement: placement)
        try writer.flush()
        return (report, reader.bytesRead, writer.bytesWritten)
    }
}
