import FerryDisk
import FerryFormats
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// ferry's NBD client against the real servers: qemu-nbd (qcow2, vmdk) and nbdkit (memory, data,
/// sparse-random, file). Oracles: qemu-img convert of the same export (bytes), nbdinfo --map
/// (extents), qemu-img compare (writes).
@Suite(.serialized, .timeLimit(.minutes(5))) struct NBDClientInteropTests {
    /// Reads the whole export through ferry, 1 MiB at a time from 4 threads at once.
    static func readAll(_ client: any BlockDevice) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: Int(client.size))
        let piece = 1 << 20
        let count = (bytes.count + piece - 1) / piece
        let failure = LockedError()
        try bytes.withUnsafeMutableBytes { raw in
            let base = SendablePointer(raw)
            DispatchQueue.concurrentPerform(iterations: count) { i in
                let start = i * piece, end = min(base.raw.count, start + piece)
                do { try client.read(into: UnsafeMutableRawBufferPointer(rebasing: base.raw[start..<end]), at: UInt64(start)) } catch {
                    failure.set(error)
                }
            }
            if let error = failure.get() { throw error }
        }
        return bytes
    }

    /// Ferry's extents of the whole export as nbdinfo's types (3 hole,zero; 2 zero; 0 data), merged.
    static func ferryMap(_ client: NBDClient) throws -> [(UInt64, UInt64, UInt32)] {
        var out: [(UInt64, UInt64, UInt32)] = []
        for e in try client.extents(at: 0, length: client.size) {
            let t: UInt32 = e.kind == .hole ? 3 : e.kind == .zero ? 2 : 0
            if let last = out.last, last.2 == t, last.0 + last.1 == e.offset { out[out.count - 1].1 += e.length } else { out.append((e.offset, e.length, t)) }
        }
        return out
    }

    static func expectSameMap(_ a: [(UInt64, UInt64, UInt32)], _ b: [(UInt64, UInt64, UInt32)], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.map { "\($0.0)+\($0.1):\($0.2)" } == b.map { "\($0.0)+\($0.1):\($0.2)" }, sourceLocation: sourceLocation)
    }

    /// Bytes through ferry == qemu-img convert of the same export; extents == nbdinfo --map.
    func check(_ uri: String, in dir: TemporaryDirectory, expectHoles: Bool) throws {
        let client = try NBDClient(uri)
        defer { try? client.close() }
        #expect(client.negotiated.structuredReplies)
        #expect(client.negotiated.baseAllocation != nil)
        let ours = try Self.readAll(client)
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "raw", uri, dir.file("oracle.raw")])
        let oracle = Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("oracle.raw"))))
        #expect(ours.count == oracle.count)
        #expect(ours == oracle, "bytes through ferry differ from qemu-img convert's")
        let map = try Self.ferryMap(client)
        Self.expectSameMap(map, try nbdinfoMap(uri))
        if expectHoles { #expect(map.contains { $0.2 == 3 }, "no holes reported") }
    }

    @Test func qemuNBDServesQcow2AndVMDK() throws {
        guard Tools.require("qemu-nbd", "qemu-img", "nbdinfo") else { return }
        let dir = try TemporaryDirectory("ferry-nbd")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 24 << 20, seed: 15)
        for format in ["qcow2", "vmdk"] {
            let image = dir.file("src.\(format)")
            try tool("qemu-img", ["convert", "-f", "raw", "-O", format, dir.file("src.raw"), image])
            let daemon = try NBDDaemon("qemu-nbd", ["-r", "-t", "-e", "4", "-f", format, "-k", dir.file("\(format).sock"), image], socket: dir.file("\(format).sock"))
            try check(daemon.uri, in: dir, expectHoles: true)
            // And through the scheme every command uses.
            let opened = try NBDScheme().openSource(daemon.uri, policy: SourcePolicy())
            defer { try? opened.disk.close() }
            #expect(try opened.disk.readBytes(at: 1 << 20, count: 4096) == Array(raw[(1 << 20)..<(1 << 20) + 4096]))
            try opened.disk.close()
            daemon.stop()
        }
    }

    @Test func nbdkitPlugins() throws {
        guard Tools.require("nbdkit", "qemu-img", "nbdinfo") else { return }
        let dir = try TemporaryDirectory("ferry-nbd")
        _ = try writePatternDisk(dir.file("file.raw"), size: 8 << 20, seed: 3)
        let setups: [(String, [String], Bool)] = [
            ("memory", ["memory", "4M"], true),
            ("data", ["data", "data=\"hello\" @1048576 \"world\" @^65536 (0x55 0xAA)*100", "size=3M"], true),
            ("sparse-random", ["sparse-random", "size=32M", "seed=7"], true),
            ("file", ["file", dir.file("file.raw")], true),
        ]
        for (name, args, holes) in setups {
            let socket = dir.file(name + ".sock")
            let daemon = try NBDDaemon("nbdkit", ["-f", "-U", socket] + args, socket: socket)
            try check(daemon.uri, in: dir, expectHoles: holes)
            daemon.stop()
        }
    }

    /// Writes (WRITE, WRITE_ZEROES with and without NO_HOLE, TRIM, FLUSH) into a writable
    /// qemu-nbd export of an empty qcow2; qemu-img compare says it holds the raw disk.
    @Test func writesToQemuNBD() throws {
        guard Tools.require("qemu-nbd", "qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-nbd")
        let size: UInt64 = 16 << 20
        var expected = try writePatternDisk(dir.file("src.raw"), size: size, seed: 99)
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", dir.file("t.qcow2"), "\(size)"])
        let daemon = try NBDDaemon("qemu-nbd", ["-t", "-f", "qcow2", "-k", dir.file("w.sock"), dir.file("t.qcow2")], socket: dir.file("w.sock"))
        let client = try NBDClient(daemon.uri, writable: true)
        #expect(client.capabilities.contains(.writable))
        // Garbage first, so that the zeroing below has something to clear.
        let junk = [UInt8](repeating: 0x5A, count: Int(size))
        try junk.withUnsafeBytes { try client.write($0, at: 0) }
        try expected.withUnsafeBytes { try client.write(UnsafeRawBufferPointer(rebasing: $0[0..<(8 << 20)]), at: 0) }
        try expected.withUnsafeBytes { try client.write(UnsafeRawBufferPointer(rebasing: $0[(8 << 20)...]), at: 8 << 20) }
        // Zero the middle two ways; trimming then zeroing must still read back zeros.
        try client.writeZeros(at: 2 << 20, length: 1 << 20, mayDiscard: false)
        try client.trim(at: 3 << 20, length: 1 << 20)
        try client.writeZeros(at: 3 << 20, length: 1 << 20, mayDiscard: true)
        for i in (2 << 20)..<(4 << 20) { expected[i] = 0 }
        try client.flush()
        try client.close()
        try Data(expected).write(to: URL(fileURLWithPath: dir.file("expected.raw")))
        daemon.stop()
        let compare = try Tools.run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", dir.file("expected.raw"), dir.file("t.qcow2")])
        #expect(compare.status == 0, "\(compare.stdout) \(compare.stderr)")
    }

    @Test func readOnlyExportRefusesWritableOpen() throws {
        guard Tools.require("nbdkit") else { return }
        let dir = try TemporaryDirectory("ferry-nbd")
        let daemon = try NBDDaemon("nbdkit", ["-f", "-r", "-U", dir.file("r.sock"), "memory", "1M"], socket: dir.file("r.sock"))
        #expect(throws: DiskError.self) { try NBDClient(daemon.uri, writable: true) }
        daemon.stop()
    }
}

/// A pointer that crosses into concurrentPerform's closures; every thread writes its own range.
struct SendablePointer: @unchecked Sendable {
    // @unchecked: the ranges are disjoint and the caller waits for every thread.
    let raw: UnsafeMutableRawBufferPointer
    init(_ raw: UnsafeMutableRawBufferPointer) { self.raw = raw }
}

final class LockedError: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var error: (any Error)?
    func set(_ e: any Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
    func get() -> (any Error)? { lock.lock(); defer { lock.unlock() }; return error }
}
