import FerryTestSupport
import Foundation
import Testing

/// The boot disk of Tests/Fixtures/make-boot-disk.sh, built at most once per test run per variant.
///
/// Built disks are kept in the script's cache directory under a name carrying a hash of the
/// script, so a later run reuses them and an edited script builds afresh. Tests only read them
/// (ferry opens sources read-only; QEMU boots them with `-snapshot`).
actor BootDiskFixture {
    static let shared = BootDiskFixture()

    enum Variant: String, Sendable { case mbr1m = "", lba63 = "--lba63" }

    /// Why a disk is not available: `skip` is an environment reason (tool missing, no mirror).
    enum Outcome: Sendable {
        case built(String)
        case skip(String)
        case failed(String)
    }

    private var outcomes: [Variant: Outcome] = [:]

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let script = packageRoot.appendingPathComponent("Tests/Fixtures/make-boot-disk.sh").path
    static var cacheDirectory: String {
        ProcessInfo.processInfo.environment["FERRY_BOOT_CACHE"] ?? "/var/tmp/ferry-boot-cache"
    }

    func disk(_ variant: Variant = .mbr1m) -> Outcome {
        if let known = outcomes[variant] { return known }
        let outcome = Self.build(variant)
        outcomes[variant] = outcome
        return outcome
    }

    private static func build(_ variant: Variant) -> Outcome {
        guard let script = try? Data(contentsOf: URL(fileURLWithPath: script)) else {
            return .failed("cannot read \(Self.script)")
        }
        let name = "boot-\(fnv1a(script))\(variant == .lba63 ? "-lba63" : "").raw"
        let path = cacheDirectory + "/" + name
        if FileManager.default.fileExists(atPath: path) { return .built(path) }
        let started = Date()
        // Build under a temporary name so a killed run never leaves a half disk behind.
        let partial = path + ".partial-\(getpid())"
        let arguments = [Self.script, partial] + (variant == .lba63 ? ["--lba63"] : [])
        let result: ToolResult
        do {
            result = try Tools.run("/bin/bash", arguments)
        } catch {
            return .failed("cannot run \(Self.script): \(error)")
        }
        switch result.status {
        case 0:
            do {
                try FileManager.default.moveItem(atPath: partial, toPath: path)
            } catch {
                return .failed("cannot move \(partial) into place: \(error)")
            }
            print("boot disk \(name) built in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
            return .built(path)
        case 77:
            return .skip(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        default:
            try? FileManager.default.removeItem(atPath: partial)
            return .failed("make-boot-disk.sh exited \(result.status): \(result.stderr)")
        }
    }

    /// 64-bit FNV-1a: enough to tell script versions apart in a cache file name.
    private static func fnv1a(_ data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data { hash = (hash ^ UInt64(byte)) &* 0x0100_0000_01b3 }
        return String(hash, radix: 16)
    }
}

/// A child process with a deadline: killed (SIGTERM, then SIGKILL) when it overruns.
struct BoundedProcess {
    let process = Process()

    init(_ executable: String, _ arguments: [String], stdout: String? = nil, stderr: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try Self.handle(stdout)
        process.standardError = try Self.handle(stderr)
        try process.run()
    }

    private static func handle(_ path: String?) throws -> FileHandle {
        guard let path else { return FileHandle.nullDevice }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    /// Waits until the process ends or `seconds` pass; returns its status, or nil after a kill.
    func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        guard process.isRunning else { return process.terminationStatus }
        stop()
        return nil
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<40 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Boots a disk under QEMU (TCG, no network, serial port to a file) and reports the serial output.
enum QEMUBoot {
    static let marker = "FERRY-BOOTED"
    /// The guest powers off right after printing the marker; a stuck boot is killed here.
    static let timeout = 120.0

    struct Outcome {
        var serial: String
        var seconds: Double
        var exitStatus: Int32?
        var sawMarker: Bool { serial.contains(QEMUBoot.marker) }
        /// The last serial lines, for a failure message.
        var tail: String { serial.split(separator: "\n").suffix(15).joined(separator: "\n") }
    }

    static var available: Bool { Tools.require("qemu-system-x86_64", why: "boot tests need QEMU") }

    static func boot(_ disk: String, format: String, interface: String, snapshot: Bool = false, timeout: Double = timeout, in dir: TemporaryDirectory) throws -> Outcome {
        guard let qemu = Tools.find("qemu-system-x86_64") else { throw POSIXError(.ENOENT) }
        let serial = dir.file("serial-\(UUID().uuidString).log")
        var arguments = [
            "-nographic", "-no-reboot", "-m", "256", "-display", "none", "-accel", "tcg",
            "-nic", "none", "-monitor", "none", "-serial", "file:\(serial)",
            "-drive", "file=\(disk),format=\(format),if=\(interface)",
        ]
        if snapshot { arguments.append("-snapshot") }
        let started = Date()
        let process = try BoundedProcess(qemu, arguments, stderr: dir.file("qemu-stderr.log"))
        let status = process.wait(seconds: timeout)
        let seconds = Date().timeIntervalSince(started)
        let output = (try? String(contentsOfFile: serial, encoding: .utf8)) ?? ""
        print("boot \(URL(fileURLWithPath: disk).lastPathComponent) (\(format), \(interface)): \(String(format: "%.1f", seconds)) s, "
            + (status.map { "qemu exit \($0)" } ?? "killed after \(Int(timeout)) s"))
        if status == nil || !output.contains(marker) {
            let stderr = (try? String(contentsOfFile: dir.file("qemu-stderr.log"), encoding: .utf8)) ?? ""
            print("qemu stderr: \(stderr)")
        }
        return Outcome(serial: output, seconds: seconds, exitStatus: status)
    }
}
