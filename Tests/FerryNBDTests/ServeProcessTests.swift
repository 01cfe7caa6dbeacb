import FerryDisk
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// `ferry serve` as a process: how it stops on SIGINT and SIGTERM, what its `--run` command
/// inherits, and systemd socket activation with the real tool. Synchronous tests: they run
/// and wait for processes, which must not hold the Swift concurrency pool.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ServeProcessTests {
    /// A stop signal closes the connections, removes the socket and exits 0, so the next
    /// `ferry serve` on the same path starts (it used to die of SIGTERM, exit 143, leaving
    /// the socket file, and the next serve exited 69).
    @Test(arguments: [SIGTERM, SIGINT]) func aStopSignalRemovesTheSocket(_ stop: Int32) throws {
        let dir = try TemporaryDirectory("ferry-serve")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 2 << 20, seed: 3)
        let socket = dir.file("s.sock")
        for round in 1...2 {
            let serve = try BackgroundProcess(
                FerryExecutable.path, ["serve", dir.file("src.raw"), "--nbd", "unix:\(socket)"], stderr: dir.file("serve-\(round).log"))
            defer { serve.stop() }
            try #require(serve.waitForStderr("ferry: serving", seconds: 60), "round \(round): \(serve.stderr)")
            // A client is connected when the signal comes; ferry drops it rather than wait for it.
            let client = try NBDClient(NBDURI(endpoint: .unix(path: socket), exportName: "src.raw").description)
            var first = [UInt8](repeating: 0, count: 4096)
            try first.withUnsafeMutableBytes { try client.read(into: $0, at: 0) }
            #expect(first == Array(raw[0..<4096]))
            serve.signal(stop)
            let ending = serve.wait(seconds: 20)
            try? client.close()
            #expect(ending == .exit(0), "round \(round): \(ending.map { "\($0)" } ?? "still running 20 s after signal \(stop)"); \(serve.stderr)")
            #expect(!FileManager.default.fileExists(atPath: socket), "round \(round): the socket file is still there")
        }
    }

    /// `--run`'s command starts with every signal at its default action and none blocked:
    /// ferry itself ignores SIGPIPE, which a command inheriting it would too.
    @Test func runCommandGetsDefaultSignals() throws {
        let dir = try TemporaryDirectory("ferry-serve")
        _ = try writePatternDisk(dir.file("src.raw"), size: 1 << 20, seed: 4)
        let result = try FerryExecutable.run(["serve", dir.file("src.raw"), "--run", "grep -E '^Sig(Ign|Blk):' /proc/self/status"])
        #expect(result.status == 0, "\(result.stderr)")
        var masks: [String: UInt64] = [:]
        for line in result.stdout.split(separator: "\n") {
            let fields = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            if fields.count == 2, let mask = UInt64(fields[1], radix: 16) { masks[fields[0]] = mask }
        }
        let ignored = try #require(masks["SigIgn"], "no SigIgn line in \(result.stdout)")
        #expect(ignored & (1 << UInt64(SIGPIPE - 1)) == 0, "SIGPIPE is ignored in the command (SigIgn \(String(ignored, radix: 16)))")
        // Signals 32 and 33 are glibc's own (thread cancellation, setxid), which posix_spawn ignores.
        #expect(ignored & 0x7FFF_FFFF == 0, "the command ignores standard signals (SigIgn \(String(ignored, radix: 16)))")
        #expect(masks["SigBlk"] == 0, "the command has blocked signals: \(result.stdout)")
    }

    /// SIGTERM to ferry reaches `--run`'s command; ferry exits with its status (128+15) at
    /// once, having removed its private socket directory.
    @Test func sigtermStopsTheRunCommand() throws {
        let dir = try TemporaryDirectory("ferry-serve")
        _ = try writePatternDisk(dir.file("src.raw"), size: 1 << 20, seed: 5)
        let info = dir.file("info")
        // exec: the command's pid is the shell's, which ferry signals.
        let command = "echo \"$$ $unixsocket\" > '\(info).tmp' && mv '\(info).tmp' '\(info)' && exec sleep 60"
        let serve = try BackgroundProcess(FerryExecutable.path, ["serve", dir.file("src.raw"), "--run", command], stderr: dir.file("serve.log"))
        defer { serve.stop() }
        var written: String?
        for _ in 0..<3000 where written == nil && serve.process.isRunning {
            written = try? String(contentsOfFile: info, encoding: .utf8)
            if written == nil { usleep(20_000) }
        }
        let fields = try #require(written, "the command did not start: \(serve.stderr)").split(separator: " ").map(String.init)
        let sleeper = try #require(fields.first.flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let socketDirectory = try #require(fields.last.map { ($0.trimmingCharacters(in: .whitespacesAndNewlines) as NSString).deletingLastPathComponent })
        defer { kill(sleeper, SIGKILL) }
        #expect(FileManager.default.fileExists(atPath: socketDirectory))
        let started = Date()
        serve.signal(SIGTERM)
        let ending = serve.wait(seconds: 20)
        #expect(ending == .exit(128 + SIGTERM), "\(ending.map { "\($0)" } ?? "still running 20 s after SIGTERM"); \(serve.stderr)")
        #expect(Date().timeIntervalSince(started) < 5, "ferry took \(Date().timeIntervalSince(started)) s to stop")
        #expect(kill(sleeper, 0) != 0, "the command (pid \(sleeper)) outlived ferry")
        #expect(!FileManager.default.fileExists(atPath: socketDirectory), "\(socketDirectory) is still there")
    }

    /// systemd-socket-activate listens and starts `ferry serve --socket-activation` on the
    /// first connection; nbdinfo and nbdcopy read the source's bytes through it, and SIGTERM
    /// ends ferry (exec'd in the tool's place) with exit 0.
    ///
    /// One bash script runs the server and the clients (each under `timeout`): with the server
    /// a Foundation child of the test too, Foundation once never saw a client exit and
    /// `waitUntilExit` hung.
    @Test func socketActivationServesTheSource() throws {
        guard Tools.require("systemd-socket-activate", "nbdinfo", "nbdcopy", "qemu-img", "timeout") else { return }
        let dir = try TemporaryDirectory("ferry-serve")
        let raw = try writePatternDisk(dir.file("src.raw"), size: 8 << 20, seed: 6)
        try tool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", dir.file("src.raw"), dir.file("disk.qcow2")])
        let socket = dir.file("activate.sock")
        let uri = NBDURI(endpoint: .unix(path: socket), exportName: "disk.qcow2").description
        let script = """
            systemd-socket-activate -l '\(socket)' "$FERRY" serve --socket-activation '\(dir.file("disk.qcow2"))' 2>'\(dir.file("activate.log"))' &
            server=$!
            for i in $(seq 300); do [ -S '\(socket)' ] && break; sleep 0.1; done
            echo "size $(timeout 30 nbdinfo --size '\(uri)')"
            timeout 60 nbdcopy '\(uri)' '\(dir.file("copy.raw"))'; echo "nbdcopy $?"
            kill -TERM $server
            for i in $(seq 200); do kill -0 $server 2>/dev/null || break; sleep 0.1; done
            kill -KILL $server 2>/dev/null && echo "ferry outlived SIGTERM"
            wait $server; echo "ferry $?"
            """
        let result = try FerryExecutable.shell(script)
        let log = (try? String(contentsOfFile: dir.file("activate.log"), encoding: .utf8)) ?? ""
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("size \(raw.count)"), "\(result.stdout)\(result.stderr)\(log)")
        #expect(lines.contains("nbdcopy 0"), "\(result.stdout)\(result.stderr)\(log)")
        #expect(Array((try? Data(contentsOf: URL(fileURLWithPath: dir.file("copy.raw")))) ?? Data()) == raw)
        #expect(log.contains("Execing"), "systemd-socket-activate did not start ferry: \(log)")
        #expect(lines.contains("ferry 0"), "\(result.stdout)\(log)")
    }
}
