import FerryDisk
import Foundation
import FerryTestSupport
import Synchronization
import Testing

/// Helpers for the guest-inspection tests: external tools, temp dirs, the fixture script.
enum GuestTools {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtureScript = packageRoot.appendingPathComponent("Tests/Fixtures/make-guest-fixtures.sh").path

    static func which(_ tool: String) -> Bool {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        return paths.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
    }

    /// True when every tool exists; otherwise prints the SKIP reason.
    static func require(_ tools: String..., test: String = #function) -> Bool {
        let missing = tools.filter { !which($0) }
        if !missing.isEmpty { Skip.because("\(test): \(missing.joined(separator: ", ")) not installed") }
        return missing.isEmpty
    }

    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (env["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: data, stderr: String(decoding: errData, as: UTF8.self))
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-guest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs the fixture script; returns false (after printing SKIP) when it exits 77.
    static func makeFixture(_ arguments: [String], test: String = #function) throws -> Bool {
        let result = try run("bash", [fixtureScript] + arguments)
        if result.status == 77 {
            Skip.because("\(test): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            return false
        }
        guard result.status == 0 else { throw FixtureError(message: "fixture script failed (\(result.status)): \(result.stderr)") }
        return true
    }

    /// Writes files (path → bytes) below `root`, creating directories.
    static func writeTree(_ root: URL, _ files: [String: [UInt8]]) throws {
        for (path, bytes) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Wraps a device and counts the bytes read through it: the inspect read budget.
final class ReadCountingDevice: BlockDevice {
    let inner: any BlockDevice
    private let counters = Mutex<(bytes: UInt64, calls: Int)>((0, 0))

    init(_ inner: any BlockDevice) { self.inner = inner }

    var name: String { inner.name }
    var size: UInt64 { inner.size }
    var logicalSectorSize: Int { inner.logicalSectorSize }
    var capabilities: DiskCapabilities { inner.capabilities.subtracting(.writable) }
    var bytesRead: UInt64 { counters.withLock { $0.bytes } }
    var reads: Int { counters.withLock { $0.calls } }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        counters.withLock {
            $0.bytes += UInt64(buffer.count)
            $0.calls += 1
        }
        try inner.read(into: buffer, at: offset)
    }
}
