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

    static func start(_ path: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, Void) {
        let process = try start(path, arguments)
        process.waitUntilExit()
        return (process.terminationStatus, ())
    }

    static func freePort() -> Int { Int.random(in: 20000...60000) }

    @Test func exitCodesAndBytes() async throws {
        guard let ferry = Self.binary else {
            print("SKIP: .build/debug/ferry with send/receive is not built yet")
            return
        }
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
}
