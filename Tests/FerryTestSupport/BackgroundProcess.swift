public import Foundation

/// A program left running while a test talks to it (`ferry serve`), with its stderr in a
/// file. Every wait is bounded; `stop` (also run on release) kills what is still running,
/// so a failing test never leaves a server behind.
public final class BackgroundProcess: @unchecked Sendable {
    // @unchecked: `process` is set up in init; later only read, signalled and waited for.
    public let process = Process()
    public let stderrPath: String

    /// How the program ended.
    public enum Ending: Equatable, Sendable, CustomStringConvertible {
        case exit(Int32)
        case signal(Int32)
        public var description: String {
            switch self {
            case .exit(let status): return "exit \(status)"
            case .signal(let number): return "killed by signal \(number)"
            }
        }
    }

    /// Starts `executable arguments…` with stdin and stdout at /dev/null and stderr to `stderr`.
    public init(_ executable: String, _ arguments: [String], stderr: String, environment: [String: String]? = nil) throws {
        stderrPath = stderr
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        try process.run()
    }

    public var pid: pid_t { process.processIdentifier }

    /// What the program wrote to stderr so far.
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// True once `text` is in stderr; false after `seconds`, or when the program ended first.
    public func waitForStderr(_ text: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            guard process.isRunning else { return stderr.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// Waits at most `seconds` for the program to end; nil while it still runs.
    public func wait(seconds: Double) -> Ending? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        guard !process.isRunning else { return nil }
        process.waitUntilExit()
        return process.terminationReason == .exit ? .exit(process.terminationStatus) : .signal(process.terminationStatus)
    }

    /// Sends `number` to the program.
    public func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// SIGKILL unless it already ended, and reap it.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}
