import FerryDisk
import FerryFormats
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// ferry's NBD server read and written by the real clients: nbdinfo --map, nbdcopy, qemu-img
/// convert and compare; and `ferry serve --run` end to end.
@Suite(.serialized, .timeLimit(.minutes(5))) struct NBDServerInteropTests {
    @Test func realClientsReadAQcow2Export() throws {
        guard Tools.require("qemu-img", "nbdinfo", "nbdcopy") else { return }
        let dir = try TemporaryDirectory("ferry-nbd")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 20 << 20, seed: 42)
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", dir.file("src.raw"), dir.file("src.qcow2")])
        let disk = try DiskImage.open(source: dir.file("src.qcow2")).disk
        defer { try? disk.close() }
        let spec = NBDExportSpec(name: "disk", size: disk.size, writable: false)
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: disk)], listen: .unix(path: dir.file("s.sock")))
        defer { server.close() }
        let uri = try #require(server.uri())
        // nbdcopy and qemu-img read the source's bytes.
        try tool("nbdcopy", [uri, dir.file("nbdcopy.raw")])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("nbdcopy.raw")))) == raw)
        let compare = try Tools.run("qemu-img", ["compare", "-f", "raw", "-F", "raw", dir.file("src.raw"), uri])
        #expect(compare.status == 0, "\(compare.stdout)\(compare.stderr)")
        // nbdinfo's map is the source's own extents, and every hole in it reads as zeros.
        var expected: [(UInt64, UInt64, UInt32)] = []
        for e in try disk.extents(at: 0, length: disk.size) {
            let t: UInt32 = e.kind == .hole ? 3 : e.kind == .zero ? 2 : 0
            if let last = expected.last, last.2 == t, last.0 + last.1 == e.offset { expected[expected.count - 1].1 += e.length } else { expected.append((e.offset, e.length, t)) }
        }
        let map = try nbdinfoMap(uri)
        NBDClientInteropTests.expectSameMap(map, expected)
        #expect(map.contains { $0.2 == 3 })
        for (offset, length, type) in map where type != 0 {
            #expect(raw[Int(offset)..<Int(offset + length)].allSatisfy { $0 == 0 }, "a hole at \(offset) holds data")
        }
        // nbdinfo sees a read-only, multi-conn export with structured replies and base:allocation.
        let info = try tool("nbdinfo", ["--json", uri])
        #expect(info.contains("\"is_read_only\": true"))
        #expect(info.contains("\"can_multi_conn\": true"))
        #expect(info.contains("base:allocation"))
    }

    @Test func severalClientsAtOnceAndUnknownExport() throws {
        var random = SeededRandom(seed: 8)
        let bytes = random.bytes(4 << 20)
        let device = MemoryDevice(name: "mem", bytes: bytes, writable: false)
        let spec = NBDExportSpec(name: "m", size: device.size, writable: false)
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: device)], listen: .tcp(host: "127.0.0.1", port: 0))
        defer { server.close() }
        let uri = try #require(server.uri())
        #expect(!uri.contains(":0/"))
        let clients = try (0..<4).map { _ in try NBDClient(uri) }
        let results = LockedResults()
        DispatchQueue.concurrentPerform(iterations: clients.count) { i in
            results.set(i, Result { try NBDClientInteropTests.readAll(clients[i]) })
        }
        for i in clients.indices { #expect(try results.get(i)?.get() == bytes) }
        for c in clients { try c.close() }
        #expect(throws: NBDError.self) { try NBDClient(uri.replacingOccurrences(of: "/m", with: "/nope")) }
        // The read-only export refuses writes with EPERM, which the client reports as read-only.
        #expect(throws: DiskError.self) { try NBDClient(uri, writable: true) }
    }

    @Test func nbdcopyWritesAWritableExport() throws {
        guard Tools.require("nbdcopy") else { return }
        let dir = try TemporaryDirectory("ferry-nbd")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 12 << 20, seed: 5)
        // The target starts full of 0xFF so that zeroed ranges must really be zeroed.
        try Data(repeating: 0xFF, count: raw.count).write(to: URL(fileURLWithPath: dir.file("target.raw")))
        let target = try FileDevice.openForWriting(dir.file("target.raw"))
        let spec = NBDExportSpec(name: "", size: target.size, writable: true)
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: target)], listen: .unix(path: dir.file("w.sock")))
        try tool("nbdcopy", [dir.file("src.raw"), try #require(server.uri())])
        server.close()
        try target.close()
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("target.raw")))) == raw)
    }

    @Test func ferryServeRunsACommand() throws {
        guard Tools.require("qemu-img", "nbdcopy") else { return }
        let dir = try TemporaryDirectory("ferry-nbd")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 6 << 20, seed: 1)
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), dir.file("old.vmdk")])
        let copied = try FerryExecutable.run(["serve", dir.file("old.vmdk"), "--run", "nbdcopy \"$uri\" '\(dir.file("new.raw"))'"])
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("new.raw")))) == raw)
        // The command's status is ferry's; a bad address is a usage error; a missing source 66.
        #expect(try FerryExecutable.run(["serve", dir.file("old.vmdk"), "--run", "exit 7"]).status == 7)
        let one = try FerryExecutable.run(["serve", dir.file("old.vmdk"), "--run", "exit 1"])
        #expect(one.status == 1 && !one.stderr.contains("error"), "\(one.stderr)")  // the command's status, not a ferry failure
        #expect(try FerryExecutable.run(["serve", dir.file("old.vmdk"), "--nbd", "carrier-pigeon"]).status == 64)
        let missing = try FerryExecutable.run(["serve", dir.file("absent.vmdk"), "--run", "true"])
        #expect(missing.status == 66, "\(missing.stderr)")
        // Writable serves only raw disks.
        #expect(try FerryExecutable.run(["serve", "--writable", dir.file("old.vmdk"), "--run", "true"]).status != 0)
    }
}

final class LockedResults: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var values: [Int: Result<[UInt8], any Error>] = [:]
    func set(_ i: Int, _ r: Result<[UInt8], any Error>) { lock.lock(); values[i] = r; lock.unlock() }
    func get(_ i: Int) -> Result<[UInt8], any Error>? { lock.lock(); defer { lock.unlock() }; return values[i] }
}
