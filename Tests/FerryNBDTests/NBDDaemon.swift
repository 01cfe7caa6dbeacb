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
    /// guard) until the socket exists.
    init(_ tool: String, _ arguments: [String], socket: String) throws {
        self.socket = socket
        process.executableURL = URL(fileURLWithPath: Tools.find(tool) ?? tool)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<3000 {
            if FileManager.default.fileExists(atPath: socket) { return }
            guard process.isRunning else { break }
            usleep(10_000)
        }
        process.terminate()
        throw NBDTestError("\(tool) did not listen on \(socket)")
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
