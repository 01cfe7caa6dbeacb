public import Foundation
public import Testing

/// A temporary directory removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    // @unchecked: immutable after init; only `path` is read.
    public let path: String

    public init(_ prefix: String = "ferry-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw POSIXError(.EIO)
        }
        path = String(cString: made)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// SplitMix64: a small seeded generator so test data is reproducible from a printed seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            while i + 8 <= count {
                raw.storeBytes(of: next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < count {
                raw[i] = UInt8(truncatingIfNeeded: next())
                i += 1
            }
        }
        return out
    }
}

/// The result of running an external program.
public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum Tools {
    /// The full path of `name` on PATH (plus sbin directories), or nil.
    public static func find(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Returns false when `name` is missing, after `Skip.because` said so (a printed SKIP
    /// line, or a failure under FERRY_REQUIRE_TOOLS=1), so tests read
    /// `guard Tools.require("qemu-img") else { return }`.
    public static func require(_ names: String..., why: String = "", sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        for name in names where find(name) == nil {
            Skip.because("\(name) is not installed\(why.isEmpty ? "" : " (\(why))")", sourceLocation: sourceLocation)
            return false
        }
        return true
    }

    /// True when running as root (loop devices, mounts).
    public static var isRoot: Bool { getuid() == 0 }

    /// Like `require`, for root: false (after `Skip.because`) when not running as root.
    public static func requireRoot(_ why: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        guard isRoot else {
            Skip.because("\(why) needs root", sourceLocation: sourceLocation)
            return false
        }
        return true
    }

    /// How long `run` lets a program take before it is stopped: far beyond any tool a test runs
    /// (the slowest, a QEMU boot under load, takes well under a minute), so it only ever ends a hang.
    public static let runLimit: Double = 600

    /// A program that was still running after `run`'s limit: it was killed, and the test fails
    /// naming it, instead of the whole suite hanging on it.
    public struct Overtime: Error, CustomStringConvertible {
        public var command: String
        public var seconds: Double
        public var description: String { "\(command) was still running after \(Int(seconds)) s: killed (a hang)" }
    }

    /// Runs a program to completion, capturing its output. A program still running after
    /// `limit` seconds is killed (SIGTERM, then SIGKILL) and `Overtime` is thrown.
    ///
    /// Spawned with posix_spawn and reaped with waitpid on its own pid, not through
    /// Foundation's `Process`: with several children alive at once (the parallel suite, a
    /// server started by the same test), `Process.waitUntilExit` was seen to wait forever for
    /// a child that had exited. The child inherits the test process's signal dispositions
    /// (as `Process` gives them) with an empty signal mask.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, limit: Double = runLimit) throws -> ToolResult {
        let path = executable.hasPrefix("/") ? executable : (find(executable) ?? executable)
        var output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1], input: [Int32] = [-1, -1]
        // pipe2 is not in Swift's Glibc: pipe, then close-on-exec at once, so that no other
        // test's child inherits these (ferry's own descriptors are opened close-on-exec).
        func makePipe(_ fds: inout [Int32]) -> Bool {
            guard pipe(&fds) == 0 else { return false }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return true
        }
        guard makePipe(&output), makePipe(&errors), stdin == nil || makePipe(&input)
        else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if stdin != nil {
            posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        for fd in [output[1], errors[1], input[0]] where fd >= 0 { close(fd) }
        guard spawned == 0 else {
            for fd in [output[0], errors[0], input[1]] where fd >= 0 { close(fd) }
            throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .ENOENT)
        }
        // Both pipes drained on threads of their own, so that a chatty program never blocks
        // and a grandchild that keeps a pipe open cannot hold this call after the program exited.
        let outData = LockedData(), errData = LockedData()
        for (fd, sink) in [(output[0], outData), (errors[0], errData)] {
            Thread {
                var data = Data()
                var chunk = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n > 0 { data.append(contentsOf: chunk[0..<n]) } else if n < 0 && errno == EINTR { continue } else { break }
                }
                close(fd)
                sink.set(data)
            }.start()
        }
        if let stdin {
            let fd = input[1]
            Thread {
                stdin.withUnsafeBytes { bytes in
                    var at = 0
                    while at < bytes.count {
                        let n = write(fd, bytes.baseAddress! + at, bytes.count - at)
                        if n > 0 { at += n } else if n < 0 && errno == EINTR { continue } else { break }
                    }
                }
                close(fd)
            }.start()
        }
        var status: Int32 = 0
        let started = Date()
        var pause: useconds_t = 500
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date().timeIntervalSince(started) > limit {
                kill(pid, SIGTERM)
                let grace = Date().addingTimeInterval(5)
                while waitpid(pid, &status, WNOHANG) == 0 {
                    if Date() > grace {
                        kill(pid, SIGKILL)
                        waitpid(pid, &status, 0)
                        break
                    }
                    usleep(10_000)
                }
                throw Overtime(command: ([executable] + arguments).joined(separator: " "), seconds: limit)
            }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
        // The program has exited; its pipes end when the last process holding them does.
        let drained = Date().addingTimeInterval(30)
        while !(outData.isSet && errData.isSet), Date() < drained { usleep(1000) }
        // As `Process.terminationStatus` has it: the exit status, or the signal that killed it.
        let signal = status & 0x7f
        return ToolResult(
            status: signal == 0 ? (status >> 8) & 0xff : signal, stdout: String(decoding: outData.value, as: UTF8.self),
            stderr: String(decoding: errData.value, as: UTF8.self))
    }
}

/// A test that cannot run here (a tool, a library, root or a kernel feature is missing) says
/// why through `Skip.because` and returns. Locally that prints a SKIP line and the test passes;
/// with FERRY_REQUIRE_TOOLS=1 (CI, where every tool is installed) it is a failure, so a
/// skipped oracle test can never pass for a verified one.
public enum Skip {
    /// True when FERRY_REQUIRE_TOOLS=1: every skip is a failure.
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["FERRY_REQUIRE_TOOLS"] == "1" }

    /// Prints `SKIP: reason`, or records it as a test failure when skips are failures.
    public static func because(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        if isRequired {
            Issue.record("not skipped with FERRY_REQUIRE_TOOLS=1: \(reason)", sourceLocation: sourceLocation)
        } else {
            print("SKIP: \(reason)")
        }
    }
}

private final class LockedData: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    func set(_ d: Data) { lock.lock(); data = d; done = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return done }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// Writes a sparse test disk: `layout` lists (offset, bytes) to place; the rest stays a hole.
public func writeSparseFile(_ path: String, size: UInt64, layout: [(UInt64, [UInt8])]) throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.truncate(atOffset: size)
    for (offset, bytes) in layout {
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: bytes)
    }
}

/// A TCP port for a test that must name one before a program binds it (`--listen`).
public enum TestPorts {
    /// Random, and below the kernel's ephemeral range (32768–60999 here): ports that bind(0)
    /// and outgoing connections take come from that range, so a port named here never belongs
    /// to another test's receiver. Drawn from inside it, a process test's sender reconnecting
    /// to its own receiver's port reached an in-process test's receiver that the kernel had
    /// given the same port ("not a ferry hello"), and that test failed.
    public static func unassigned() -> Int {
        var range = (low: 32768, high: 60999)
        if let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8) {
            let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
            if parts.count == 2 { range = (parts[0], parts[1]) }
        }
        return range.low > 21024 ? Int.random(in: 20000..<(range.low - 1)) : Int.random(in: (range.high + 1)...65535)
    }
}
