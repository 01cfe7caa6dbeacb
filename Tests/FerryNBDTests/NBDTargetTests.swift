import FerryDisk
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// `ferry copy SRC nbd://…` and `ferry receive nbd://…` as an operator runs them, against real
/// servers: qemu-nbd serving a qcow2 (oracle: `qemu-img compare`) and nbdkit's memory plugin,
/// whose `log` filter records every request ferry sent (the order of block 0, what a refusal
/// wrote: nothing). Every ferry run is bounded (`runFerry`), every test synchronous.
@Suite(.serialized, .timeLimit(.minutes(5))) struct NBDTargetTests {
    static let size: UInt64 = 16 << 20
    static let block0 = FirstBlockHold.blockSize

    /// Runs `ferry ARGS…` with stdout and stderr in files of `dir`; kills it after `seconds`
    /// (a hang guard) and fails the test then.
    static func runFerry(_ arguments: [String], in dir: TemporaryDirectory, seconds: Double = 120,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> FerryRun {
        let process = try startFerry(arguments, in: dir, tag: "run")
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("ferry \(arguments.joined(separator: " ")) ran over \(seconds) s", sourceLocation: sourceLocation)
        }
        process.waitUntilExit()
        return FerryRun(
            status: process.terminationStatus, stdout: (try? String(contentsOfFile: dir.file("run.out"), encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: dir.file("run.err"), encoding: .utf8)) ?? "")
    }

    /// Starts `ferry ARGS…` with stdout and stderr going to `TAG.out` / `TAG.err` in `dir`.
    static func startFerry(_ arguments: [String], in dir: TemporaryDirectory, tag: String, stdin: FileHandle? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: FerryExecutable.path)
        process.arguments = arguments
        process.standardInput = stdin ?? FileHandle.nullDevice
        func output(_ name: String) throws -> FileHandle {
            _ = FileManager.default.createFile(atPath: dir.file("\(tag).\(name)"), contents: nil)
            return try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("\(tag).\(name)")))
        }
        process.standardOutput = try output("out")
        process.standardError = try output("err")
        try process.run()
        return process
    }

    /// nbdkit's memory plugin of `size` bytes on a socket in `dir`, every request logged to
    /// `name.log`; `filters` go before the log filter (nearer the plugin).
    static func memoryExport(_ name: String, size: UInt64, in dir: TemporaryDirectory, readOnly: Bool = false,
                             filters: [String] = [], parameters: [String] = []) throws -> NBDDaemon {
        let socket = dir.file(name + ".sock")
        var arguments = ["-f", "-U", socket, "--filter=log"] + filters.map { "--filter=" + $0 }
        if readOnly { arguments.append("-r") }
        arguments += ["memory", "\(size)", "logfile=" + dir.file(name + ".log")] + parameters
        return try NBDDaemon("nbdkit", arguments, socket: socket)
    }

    /// The requests the log filter recorded (their opening lines), as "Write 0x0 0x10000".
    /// ferry flushes every connection of a multi-conn client (`NBDConnectionPool`), one after
    /// another with nothing else in flight: those consecutive FLUSHes are one barrier, one "Flush".
    static func requests(_ log: String) throws -> [String] {
        let all = try loggedRequests(log)
        return all.indices.compactMap { i in all[i] == "Flush" && i > 0 && all[i - 1] == "Flush" ? nil : all[i] }
    }

    static func loggedRequests(_ log: String) throws -> [String] {
        try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard let i = fields.firstIndex(where: { ["Write", "Zero", "Trim", "Flush"].contains($0) }),
                  i > 0, fields[i - 1].hasPrefix("connection="), line.hasSuffix(" ...") else { return nil }
            let offset = fields.first { $0.hasPrefix("offset=") }.map { String($0.dropFirst(7)) } ?? ""
            let count = fields.first { $0.hasPrefix("count=") }.map { String($0.dropFirst(6)) } ?? ""
            return [String(fields[i]), offset, count].filter { !$0.isEmpty }.joined(separator: " ")
        }
    }

    /// Fills the export with `byte`, and block 0 with a marker, through ferry's own client.
    static func prefill(_ uri: String, size: UInt64, byte: UInt8) throws {
        let client = try NBDClient(uri, writable: true)
        defer { try? client.close() }
        var bytes = [UInt8](repeating: byte, count: Int(size))
        bytes.replaceSubrange(0..<marker.count, with: marker)
        try bytes.withUnsafeBytes { try client.write($0, at: 0) }
        try client.flush()
    }

    static let marker = Array("FERRY-TEST-MARKER: the old disk's block 0".utf8)

    static func readBack(_ uri: String) throws -> [UInt8] {
        let client = try NBDClient(uri)
        defer { try? client.close() }
        return try client.readBytes(at: 0, count: Int(client.size))
    }

    /// The order TargetCommit promises: block 0 zeroed and flushed at open, everything else,
    /// a flush, then block 0 written, then a flush, and nothing after.
    static func expectBlock0Last(_ requests: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let block0 = "0x0 0x\(String(Self.block0, radix: 16))"
        // (Zeroed by WRITE_ZEROES, or by writing zero bytes when the server lacks it.)
        #expect(["Zero \(block0)", "Write \(block0)"].contains(requests.first ?? ""), "\(requests.prefix(4))", sourceLocation: sourceLocation)
        #expect(requests.dropFirst().first == "Flush", "\(requests.prefix(4))", sourceLocation: sourceLocation)
        #expect(requests.suffix(3) == ["Flush", "Write \(block0)", "Flush"], "\(requests.suffix(4))", sourceLocation: sourceLocation)
        let middle = requests.dropFirst(2).dropLast(3)
        #expect(!middle.isEmpty, sourceLocation: sourceLocation)
        #expect(!middle.contains { $0.hasPrefix("Write 0x0 ") || $0.hasPrefix("Zero 0x0 ") }, "block 0 written early", sourceLocation: sourceLocation)
    }

    /// qcow2 and raw sources into a writable qemu-nbd export of a qcow2 that starts full of junk:
    /// `qemu-img compare` agrees with the source, and `--verify` re-read it through NBD.
    @Test func copyIntoQemuNBDQcow2Export() throws {
        guard Tools.require("qemu-nbd", "qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-nbdt")
        _ = try writePatternDisk(dir.file("src.raw"), size: Self.size, seed: 150)
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", dir.file("src.raw"), dir.file("src.qcow2")])
        try Data(repeating: 0xC3, count: Int(Self.size)).write(to: URL(fileURLWithPath: dir.file("junk.raw")))
        for source in ["src.qcow2", "src.raw"] {
            try tool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", dir.file("junk.raw"), dir.file("t.qcow2")])
            let socket = dir.file("q.sock")
            let daemon = try NBDDaemon("qemu-nbd", ["-t", "-f", "qcow2", "-k", socket, dir.file("t.qcow2")], socket: socket)
            let copied = try Self.runFerry(["copy", dir.file(source), daemon.uri, "--verify", "--progress", "none"], in: dir)
            #expect(copied.status == 0, "\(copied.stderr)")
            #expect(copied.stdout.contains("verified: the target reads back with the same digest"), "\(copied.stdout)")
            daemon.stop()
            let compare = try Tools.run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", dir.file("src.raw"), dir.file("t.qcow2")])
            #expect(compare.status == 0, "\(source): \(compare.stdout) \(compare.stderr)")
        }
    }

    /// Into nbdkit memory (with and without WRITE_ZEROES): the bytes read back are the source's,
    /// zero runs really are zero, and block 0 is the last write, after a flush.
    @Test func copyIntoNbdkitMemoryWritesBlock0Last() throws {
        guard Tools.require("nbdkit") else { return }
        let dir = try TemporaryDirectory("ferry-nbdt")
        let source = try writePatternDisk(dir.file("src.raw"), size: Self.size, seed: 151)
        for (name, filters) in [("zero", [String]()), ("nozero", ["nozero"])] {
            let daemon = try Self.memoryExport(name, size: Self.size, in: dir, filters: filters)
            try Self.prefill(daemon.uri, size: Self.size, byte: 0x5A)
            let before = try Self.requests(dir.file(name + ".log")).count
            let copied = try Self.runFerry(["copy", dir.file("src.raw"), daemon.uri, "--verify", "--progress", "none"], in: dir)
            #expect(copied.status == 0, "\(name): \(copied.stderr)")
            #expect(try Self.readBack(daemon.uri) == source, "\(name): the export does not hold the source")
            let requests = Array(try Self.requests(dir.file(name + ".log")).dropFirst(before))
            Self.expectBlock0Last(requests)
            // Zero runs: WRITE_ZEROES when the server has it, zero bytes written when not.
            #expect(requests.contains { $0.hasPrefix("Zero ") && !$0.hasPrefix("Zero 0x0 ") } == (name == "zero"), "\(name)")
            daemon.stop()
        }
    }

    /// A larger export is written from its start and the rest left as it was (with a note);
    /// a smaller one and a read-only one are refused (exit 73) with nothing written.
    @Test func exportSizesAndReadOnlyRefusals() throws {
        guard Tools.require("nbdkit") else { return }
        let dir = try TemporaryDirectory("ferry-nbdt")
        let source = try writePatternDisk(dir.file("src.raw"), size: Self.size, seed: 152)

        let large = try Self.memoryExport("large", size: Self.size + (4 << 20), in: dir)
        try Self.prefill(large.uri, size: Self.size + (4 << 20), byte: 0x77)
        let copied = try Self.runFerry(["copy", dir.file("src.raw"), large.uri, "--verify", "--progress", "none"], in: dir)
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(copied.stderr.contains("the last 4194304 bytes (from offset 16777216) are left as they were"), "\(copied.stderr)")
        let back = try Self.readBack(large.uri)
        #expect(Array(back[..<Int(Self.size)]) == source)
        #expect(back[Int(Self.size)...].allSatisfy { $0 == 0x77 }, "the rest of the larger export was written")
        large.stop()

        let small = try Self.memoryExport("small", size: Self.size - 512, in: dir)
        try Self.prefill(small.uri, size: Self.size - 512, byte: 0x77)
        let before = try Self.requests(dir.file("small.log")).count
        let refused = try Self.runFerry(["copy", dir.file("src.raw"), small.uri, "--progress", "none"], in: dir)
        #expect(refused.status == 73, "\(refused.stderr)")
        #expect(refused.stderr.contains("holds 16776704 bytes but the source needs 16777216; nothing was written"), "\(refused.stderr)")
        #expect(try Self.requests(dir.file("small.log")).count == before, "a refused copy sent writes")
        #expect(Array(try Self.readBack(small.uri).prefix(Self.marker.count)) == Self.marker)
        small.stop()

        let readOnly = try Self.memoryExport("ro", size: Self.size, in: dir, readOnly: true)
        let denied = try Self.runFerry(["copy", dir.file("src.raw"), readOnly.uri, "--progress", "none"], in: dir)
        #expect(denied.status == 73, "\(denied.stderr)")
        #expect(denied.stderr.contains("read-only"), "\(denied.stderr)")
        #expect(denied.stderr.split(separator: "\n").count == 1, "\(denied.stderr)")
        #expect(try Self.requests(dir.file("ro.log")).isEmpty)
        // The receiver refuses it before it listens: nothing to pair with.
        let receive = try Self.runFerry(
            ["receive", readOnly.uri, "--listen", "127.0.0.1:\(TestPorts.unassigned())", "--progress", "none"], in: dir,
            seconds: 30)
        #expect(receive.status == 73, "\(receive.stderr)")
        #expect(!receive.stderr.contains("listening"), "\(receive.stderr)")
        readOnly.stop()
    }

    /// A copy killed mid-way leaves block 0 blank: neither the old disk's block 0 (the marker)
    /// nor the new one, though requests past block 0 were sent. The source is standard input,
    /// fed half the disk and then held (a shell that sleeps), so the kill lands mid-copy.
    /// (Slowing the server instead, with nbdkit 1.32's delay filter, crashed nbdkit on the kill.)
    @Test func cutCopyLeavesBlock0Blank() throws {
        guard Tools.require("nbdkit") else { return }
        let dir = try TemporaryDirectory("ferry-nbdt")
        let source = try writePatternDisk(dir.file("src.raw"), size: Self.size, seed: 153)
        let daemon = try Self.memoryExport("cut", size: Self.size, in: dir)
        try Self.prefill(daemon.uri, size: Self.size, byte: 0x3C)
        #expect(Array(try Self.readBack(daemon.uri).prefix(Self.marker.count)) == Self.marker)
        let before = try Self.requests(dir.file("cut.log")).count
        let feeder = Process()
        feeder.executableURL = URL(fileURLWithPath: "/bin/sh")
        feeder.arguments = ["-c", "head -c \(Self.size / 2) '\(dir.file("src.raw"))'; exec sleep 60"]
        let pipe = Pipe()
        feeder.standardOutput = pipe
        try feeder.run()
        defer { feeder.terminate() }
        let copy = try Self.startFerry(
            ["copy", "-", daemon.uri, "--size", "\(Self.size)", "--progress", "none"], in: dir, tag: "cut",
            stdin: pipe.fileHandleForReading)
        try? pipe.fileHandleForReading.close()
        try? pipe.fileHandleForWriting.close()
        // Kill it once it has written past block 0 (bounded: 30 s).
        var written = false
        for _ in 0..<1500 where copy.isRunning {
            written = try Self.requests(dir.file("cut.log")).dropFirst(before + 2).contains { $0.hasPrefix("Write ") || $0.hasPrefix("Zero ") }
            if written { break }
            usleep(20_000)
        }
        kill(copy.processIdentifier, SIGKILL)
        copy.waitUntilExit()
        #expect(written, "the copy wrote nothing past block 0 within 30 s")
        #expect(copy.terminationReason == .uncaughtSignal, "the copy finished before it was cut")
        let back = try Self.readBack(daemon.uri)
        #expect(back[..<Self.block0].allSatisfy { $0 == 0 }, "block 0 after a cut copy is not blank")
        #expect(Array(back[..<Self.block0]) != Array(source[..<Self.block0]))
        let wroteBlock0 = try Self.requests(dir.file("cut.log")).dropFirst(before + 2).contains { $0.hasPrefix("Write 0x0 ") }
        #expect(!wroteBlock0, "block 0 was written by a copy that was cut")
        daemon.stop()
    }

    /// `ferry send` ↔ `ferry receive nbd://…` end to end: both exit 0, the sender's digest is
    /// checked against what was written, the export holds the source (re-read through NBD by
    /// `ferry checksum`), and block 0 is written last.
    @Test func receiveIntoAnExport() throws {
        guard Tools.require("nbdkit", "qemu-img") else { return }
        let dir = try TemporaryDirectory("ferry-nbdt")
        let source = try writePatternDisk(dir.file("src.raw"), size: Self.size, seed: 154)
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", dir.file("src.raw"), dir.file("src.qcow2")])
        let daemon = try Self.memoryExport("recv", size: Self.size, in: dir)
        try Self.prefill(daemon.uri, size: Self.size, byte: 0x11)
        let before = try Self.requests(dir.file("recv.log")).count
        let code = "7kqm-2xrt-9pfa-w3ne"
        let port = TestPorts.unassigned()
        let receiver = try Self.startFerry(
            ["receive", daemon.uri, "--listen", "127.0.0.1:\(port)", "--code", code, "--progress", "none"], in: dir, tag: "recv")
        defer { if receiver.isRunning { kill(receiver.processIdentifier, SIGKILL) } }
        usleep(1_500_000)
        let sent = try Self.runFerry(["send", dir.file("src.qcow2"), "127.0.0.1:\(port)", "--code", code, "--progress", "none"], in: dir)
        #expect(sent.status == 0, "\(sent.stderr)")
        for _ in 0..<3000 where receiver.isRunning { usleep(10_000) }
        #expect(!receiver.isRunning, "the receiver did not finish within 30 s of the sender")
        if receiver.isRunning { kill(receiver.processIdentifier, SIGKILL) }
        receiver.waitUntilExit()
        let errors = (try? String(contentsOfFile: dir.file("recv.err"), encoding: .utf8)) ?? ""
        #expect(receiver.terminationStatus == 0, "\(errors)")
        #expect(errors.contains("is written in place over the network; a cut transfer cannot resume into it and starts over"), "\(errors)")
        #expect(try Self.readBack(daemon.uri) == source)
        Self.expectBlock0Last(Array(try Self.requests(dir.file("recv.log")).dropFirst(before)))
        let ours = try Self.runFerry(["checksum", dir.file("src.raw")], in: dir)
        let theirs = try Self.runFerry(["checksum", daemon.uri], in: dir)
        #expect(ours.status == 0 && theirs.status == 0, "\(ours.stderr) \(theirs.stderr)")
        #expect(ours.stdout.split(separator: " ").first == theirs.stdout.split(separator: " ").first, "\(ours.stdout) \(theirs.stdout)")
        daemon.stop()
    }

    /// What does not apply to a URI target is a clear usage error before anything is written:
    /// ferry fix (and --fix), an image format for the export.
    @Test func fixAndFormatsRefusedForURITargets() throws {
        guard Tools.require("nbdkit") else { return }
        let dir = try TemporaryDirectory("ferry-nbdt")
        _ = try writePatternDisk(dir.file("src.raw"), size: 1 << 20, seed: 155)
        let daemon = try Self.memoryExport("fix", size: 1 << 20, in: dir)
        for arguments in [["fix", daemon.uri], ["fix", daemon.uri, "--undo", dir.file("u")], ["copy", dir.file("src.raw"), daemon.uri, "--fix"]] {
            let result = try Self.runFerry(arguments, in: dir, seconds: 30)
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("ferry fix writes local files and block devices"), "\(result.stderr)")
        }
        let qcow2 = try Self.runFerry(["copy", dir.file("src.raw"), daemon.uri, "--target-format", "qcow2"], in: dir, seconds: 30)
        #expect(qcow2.status == 73, "\(qcow2.stderr)")
        #expect(qcow2.stderr.contains("applies to files only"), "\(qcow2.stderr)")
        #expect(try Self.requests(dir.file("fix.log")).isEmpty)
        daemon.stop()
    }
}

/// What a bounded ferry run printed and how it ended.
struct FerryRun {
    var status: Int32
    var stdout: String
    var stderr: String
}
