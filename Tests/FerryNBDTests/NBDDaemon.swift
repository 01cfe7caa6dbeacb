import FerryTestSupport
import Foundation
import Testing

/// An NBD server run in the foreground as a child (qemu-nbd, nbdkit -f), terminated when released.
final class NBDDaemon: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only terminated in deinit.
    let process = Process()
    let socket: String
    var uri: String { "nbd+unix:///?socket=" + socket }
    func uri(export: String) -> String { "nbd+unix:///\(export)?socket=" + socket }

    /// Starts `tool arguments…`, which must listen on `socket`, and waits (at most 30 s, a hang
    /// guard) until it listens there. The file alone is not enough: bind() makes it before
    /// listen(), and a client in between is refused (seen under load with nbdkit). A probe
    /// connection would not do either: qemu-nbd without --persistent exits after its first client.
    init(_ tool: String, _ arguments: [String], socket: String) throws {
        self.socket = socket
        process.executableURL = URL(fileURLWithPath: Tools.find(tool) ?? tool)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var seen = 0
        for _ in 0..<3000 {
            if Self.isListening(socket) { return }
            // The path as the tool bound it may be spelled otherwise in the table: then the
            // file, seen for a second, is taken as before.
            if FileManager.default.fileExists(atPath: socket) {
                seen += 1
                if seen > 100 { return }
            }
            guard process.isRunning else { break }
            usleep(10_000)
        }
        process.terminate()
        throw NBDTestError("\(tool) did not listen on \(socket)")
    }

    /// Whether a socket bound at `path` is listening: its line in /proc/net/unix has the
    /// __SO_ACCEPTCON flag (0x10000), which listen() sets.
    static func isListening(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path),
            let table = try? String(contentsOfFile: "/proc/net/unix", encoding: .utf8)
        else { return false }
        // "Num RefCount Protocol Flags Type St Inode Path"
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 8, fields[7] == path, let flags = UInt32(fields[3], radix: 16) else { return false }
            return flags & 0x10000 != 0
        }
    }

    /// SIGTERM, then SIGKILL after 5 s: qemu-nbd waits for its clients to leave on SIGTERM.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<500 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

struct NBDTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a tool and fails the test with its stderr when it fails.
@discardableResult
func tool(_ name: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let result = try Tools.run(name, arguments)
    guard result.status == 0 else {
        throw NBDTestError("\(name) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
    }
    return result.stdout
}

/// `nbdinfo --map URI` as (offset, length, type) with neighbours of one type merged.
func nbdinfoMap(_ uri: String) throws -> [(UInt64, UInt64, UInt32)] {
    var out: [(UInt64, UInt64, UInt32)] = []
    for line in try tool("nbdinfo", ["--map", uri]).split(separator: "\n") {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 3, let o = UInt64(f[0]), let l = UInt64(f[1]), let t = UInt32(f[2]) else { continue }
        if let last = out.last, last.2 == t, last.0 + last.1 == o { out[out.count - 1].1 += l } else { out.append((o, l, t)) }
    }
    return out
}

/// A raw disk of `size` bytes with seeded random data at a few places and holes elsewhere;
/// returns its bytes.
func writePatternDisk(_ path: String, size: UInt64, seed: UInt64) throws -> [UInt8] {
    var random = SeededRandom(seed: seed)
    let layout: [(UInt64, [UInt8])] = [
        (0, random.bytes(4096)), (1 << 20, random.bytes(65536 + 512)), (size / 2 + 12345, random.bytes(300_000)),
        (size - 8192, random.bytes(8192)),
    ]
    try writeSparseFile(path, size: size, layout: layout)
    return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}
