import FerryTestSupport
import Foundation
import Testing

/// The built `ferry` binary, end to end, as an operator runs it: exit codes and bytes.
/// Skips (with a printed reason) until the root command registers send/receive.
@Suite(.serialized) struct ProcessTests {
    static var binary: String? {
        let path = FileManager.default.currentDirectoryPath + "/.build/debug/ferry"
        guard FileManager.default.isExecutableFile(atPath: path) else { return nil }
        // The root command must know send (a placeholder binary prints anything and exits 0).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["send", "--help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return nil }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return output.contains("pairing code") ? path : nil
    }

    /// The binary, or nil after printing why the test skips.
    static func binaryOrSkip() -> String? {
        guard let path = binary else {
            Skip.because(".build/debug/ferry with send/receive is not built yet")
            return nil
        }
        return path
    }

    static func start(_ path: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Starts a process whose standard error the test reads.
    static func startCapturingErrors(_ path: String, _ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, errors)
    }

    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, Void) {
        let process = try start(path, arguments)
        process.waitUntilExit()
        return (process.terminationStatus, ())
    }

    /// `run`, on a thread of its own: for commands that take a while.
    static func runOffPool(_ path: String, _ arguments: [String]) async throws -> Int32 {
        try await onThread { try run(path, arguments).status }
    }

    static func freePort() -> Int { TestPorts.unassigned() }

    @Test func exitCodesAndBytes() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeDisk(at: dir + "/src.img", size: 3 * 1024 * 1024 + 100, seed: 51)
        let code = "7kqm-2xrt-9pfa-w3ne"

        // Malformed code: refused before anything happens (usage, exit 64).
        #expect(try Self.run(ferry, ["send", dir + "/src.img", "127.0.0.1:1", "--code", "7kqm-2xrt-9pfa-w3nu"]).status == 64)

        // Wrong code: both sides fail with exit 77, the target never appears.
        let port1 = Self.freePort()
        let receiver1 = try Self.start(ferry, [
            "receive", dir + "/dst.img", "--listen", "127.0.0.1:\(port1)", "--code", code, "--progress", "none",
        ])
        try await Task.sleep(nanoseconds: 1_500_000_000)
        for _ in 0..<3 {
            let status = try Self.run(ferry, [
                "send", dir + "/src.img", "127.0.0.1:\(port1)", "--code", "0000-0000-0000-0000", "--retry-for", "0",
            ]).status
            #expect(status == 77)
        }
        receiver1.waitUntilExit()
        #expect(receiver1.terminationStatus == 77)
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))

        // Right code: exit 0 on both sides, identical bytes.
        let port2 = Self.freePort()
        let receiver2 = try Self.start(ferry, [
            "receive", dir + "/dst.img", "--listen", "127.0.0.1:\(port2)", "--code", code, "--progress", "none",
        ])
        try await Task.sleep(nanoseconds: 1_500_000_000)
        #expect(try Self.run(ferry, ["send", dir + "/src.img", "127.0.0.1:\(port2)", "--code", code, "--progress", "none"]).status == 0)
        receiver2.waitUntilExit()
        #expect(receiver2.terminationStatus == 0)
        #expect(Loopback.read(dir + "/dst.img") == bytes)
    }

    /// kill -9 of both ends mid-transfer, then the same two commands again: the second run
    /// proves the journaled segments against the source by hash and finishes the copy.
    @Test func killedSenderAndReceiverResumeWhereTheyStopped() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        let size = 384 * 1024 * 1024
        #expect(try await Self.runOffPool("/bin/sh", ["-c", "head -c \(size) /dev/urandom > '\(dir)/src.img'"]) == 0)
        let code = "7kqm-2xrt-9pfa-w3ne"
        let port = Self.freePort()
        let receive = ["receive", dir + "/dst.img", "--listen", "127.0.0.1:\(port)", "--code", code, "--progress", "none"]
        let send = ["send", dir + "/src.img", "127.0.0.1:\(port)", "--code", code, "--progress", "none"]

        // First attempt, slowed to 32 MB/s; both ends die by kill -9 as soon as the receiver
        // has journaled its first checkpoint (256 MiB in, 4 s before the copy would end).
        let receiver1 = try Self.start(ferry, receive)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let sender1 = try Self.start(ferry, send + ["--limit", "32M"])
        let waited = try await Self.killBothAtFirstCheckpoint(sender1, receiver1, journal: dir + "/.dst.img.ferry-journal")
        #expect(waited < 600, "the receiver never journaled a checkpoint")
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"), "an interrupted copy must not have its final name")

        // Second attempt: the same two commands, at full speed.
        let (sender2, said, receiver2, receiverSaid) = try await Self.runBoth(ferry, receive: receive, send: send)
        print("journal waited \(waited) × 100 ms; receiver: \(receiverSaid)")
        #expect(sender2 == 0, "\(said)")
        #expect(receiver2 == 0)
        #expect(said.contains("already on the receiver match the source"), "\(said)")
        #expect(Loopback.read(dir + "/dst.img") == Loopback.read(dir + "/src.img"))
    }

    /// Waits until `journal` grows past its header (the receiver's first checkpoint
    /// landed), then kills both ends with SIGKILL. Returns the wait in 100 ms steps (600: never).
    static func killBothAtFirstCheckpoint(_ sender: Process, _ receiver: Process, journal: String) async throws -> Int {
        func journalSize() -> Int { (try? FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int) ?? 0 }
        // The journal starts as a header naming the disk; it grows when a checkpoint lands.
        var waited = 0
        var header = 0
        while waited < 600 {
            let size = journalSize()
            if header == 0 { header = size } else if size > header { break }
            try await Task.sleep(nanoseconds: 100_000_000)
            waited += 1
        }
        kill(sender.processIdentifier, SIGKILL)
        kill(receiver.processIdentifier, SIGKILL)
        try await onThread {
            sender.waitUntilExit()
            receiver.waitUntilExit()
        }
        return waited
    }

    /// Runs a receiver, then a sender, to the end: their exit statuses and what each said on stderr.
    static func runBoth(
        _ ferry: String, receive: [String], send: [String]
    ) async throws -> (sender: Int32, said: String, receiver: Int32, receiverSaid: String) {
        let (receiver, receiverErrors) = try startCapturingErrors(ferry, receive)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let (sender, errors) = try startCapturingErrors(ferry, send)
        // Blocking reads and waits run on a thread of their own, off the 2-thread pool.
        return try await onThread {
            let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            sender.waitUntilExit()
            let receiverSaid = String(decoding: receiverErrors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            receiver.waitUntilExit()
            return (sender.terminationStatus, said, receiver.terminationStatus, receiverSaid)
        }
    }
}
