import FerryTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A process's standard error, collected as it arrives.
final class ErrorLog: Sendable {
    private final class Text: Sendable {
        let value = Mutex("")
    }

    private let text = Text()
    let pipe = Pipe()

    init() {
        pipe.fileHandleForReading.readabilityHandler = { [text] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
            } else {
                text.value.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
    }

    var contents: String { text.value.withLock { $0 } }

    /// Waits (at most `seconds`) for a line starting with `prefix`; returns the rest of it.
    func waitForLine(startingWith prefix: String, seconds: Int = 60) async throws -> String? {
        for _ in 0..<(seconds * 20) {
            if let line = contents.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                return String(line.dropFirst(prefix.count))
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return nil
    }
}

/// Issue 9 items 10 and 12, end to end through the binary.
extension ProcessTests {
    /// Starts `ferry receive ... --listen 127.0.0.1:0` and learns the port it bound.
    static func startReceiver(_ ferry: String, _ arguments: [String]) async throws -> (Process, ErrorLog, Int)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ferry)
        process.arguments = arguments + ["--listen", "127.0.0.1:0"]
        let log = ErrorLog()
        process.standardError = log.pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        guard let rest = try await log.waitForLine(startingWith: "ferry receive: listening on 127.0.0.1:"), let port = Int(rest) else {
            process.terminate()
            return nil
        }
        return (process, log, port)
    }

    /// An idle TCP connection held open for the whole transfer, and a port check: the
    /// receiver finishes, says "verified" and exits 0 (it trapped in NIOAsyncWriter's
    /// deinit with SIGILL, exit 132, when such a connection was still open at the end).
    @Test func idleConnectionDuringATransferLeavesTheReceiverWhole() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        // Random bytes, so that all of it is paced (a zero run is not sent, and 8 MiB of the
        // mostly-zero disk crossed in under a second: a poll on a loaded machine missed it).
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: 12 << 20, seed: 71)
        let code = "7kqm-2xrt-9pfa-w3ne"
        guard let (receiver, log, port) = try await Self.startReceiver(
            ferry, ["receive", dir + "/dst.img", "--code", code, "--progress", "none"])
        else {
            Issue.record("the receiver did not say where it listens")
            return
        }
        // The sender, slowed to take a few seconds; while it runs, an idle connection
        // opens (and stays open to the end) and a port check comes and goes.
        let sender = try Self.start(ferry, [
            "send", dir + "/src.img", "127.0.0.1:\(port)", "--code", code, "--progress", "none", "--retry-for", "30",
            "--limit", "1M",
        ])
        // Once the session writes the target, it has paired: the others come after it.
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: dir + "/.dst.img.ferry-partial") {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(sender.isRunning, "the 12 s transfer was over before the test looked: \(log.contents)")
        // The sender is held still meanwhile (SIGSTOP, well inside the idle timeout), so the
        // session is surely mid-transfer when they come: a test task polled late on a loaded
        // machine once found the 2 MiB already sent and the receiver gone (connect → -1).
        kill(sender.processIdentifier, SIGSTOP)
        let idle = PlainPeer.connect(port)
        #expect(idle >= 0)
        defer { if idle >= 0 { close(idle) } }
        #expect(PlainPeer.connectAndClose(port))
        kill(sender.processIdentifier, SIGCONT)
        try await onThread { sender.waitUntilExit() }
        let sent = sender.terminationStatus
        try await onThread { receiver.waitUntilExit() }
        #expect(sent == 0)
        #expect(receiver.terminationStatus == 0, "\(log.contents)")
        #expect(log.contents.contains("dst.img: verified"), "\(log.contents)")
        #expect(Loopback.read(dir + "/dst.img") == bytes)
    }

    /// `ferry send SRC -` cannot know the receiver's verdict: it says "sent", never
    /// "verified"; the receiver of a damaged stream exits 3.
    @Test func pipeSenderDoesNotClaimVerification() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeRandomDisk(at: dir + "/src.img", size: 1 << 20, seed: 72)
        let script = """
            '\(ferry)' send '\(dir)/src.img' - --progress none > '\(dir)/stream' 2> '\(dir)/said' || exit 10
            # Flip one byte in the middle of the first data extent (past the headers and hashes).
            printf '\\377' | dd of='\(dir)/stream' bs=1 seek=600000 conv=notrunc status=none || exit 11
            exec '\(ferry)' receive '\(dir)/dst.img' --stdin --progress none < '\(dir)/stream'
            """
        let status = try await Self.runOffPool("/bin/sh", ["-c", script])
        let said = (try? String(contentsOfFile: dir + "/said", encoding: .utf8)) ?? ""
        #expect(status == 3, "the receiver must reject the damaged stream")
        #expect(!said.contains("verified"), "\(said)")
        #expect(said.contains("sent (the receiver verifies"), "\(said)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
    }

    /// `send --raw` to a listener that closes early: a message and exit 69, not a silent SIGPIPE.
    @Test func rawSendToAListenerThatClosesIsANetworkError() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        _ = try Loopback.makeRandomDisk(at: dir + "/src.img", size: 64 << 20, seed: 73)
        guard let (listener, port) = PlainPeer.listen() else {
            Issue.record("no listener")
            return
        }
        // Accept one connection, read a little, hang up.
        Thread.detachNewThread {
            let client = accept(listener, nil, nil)
            var buffer = [UInt8](repeating: 0, count: 65536)
            _ = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            close(client)
            close(listener)
        }
        let (process, errors) = try Self.startCapturingErrors(ferry, [
            "send", dir + "/src.img", "127.0.0.1:\(port)", "--raw", "--progress", "none",
        ])
        let said = try await onThread { () -> String in
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return text
        }
        #expect(process.terminationReason == .exit, "killed by a signal: \(process.terminationStatus)")
        #expect(process.terminationStatus == 69, "\(said)")
        #expect(said.contains("ferry send:"), "\(said)")
    }
}
