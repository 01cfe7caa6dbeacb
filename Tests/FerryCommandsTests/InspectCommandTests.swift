import FerryCommands
import Foundation
import Testing

@Suite struct InspectCommandTests {
    /// A 1 MiB raw disk with an MBR holding one Linux partition at 1 MiB… past the end, so
    /// the report carries a warning but the command still succeeds.
    static func tinyDisk() throws -> String {
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        bytes[446 + 4] = 0x83
        bytes.replaceSubrange(446 + 8..<446 + 16, with: [0x00, 0x08, 0, 0, 0x00, 0x08, 0, 0])
        bytes[510] = 0x55
        bytes[511] = 0xAA
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-inspect-\(UUID().uuidString).img").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func parsesAndRuns() throws {
        let path = try Self.tinyDisk()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let command = try InspectCommand.parse(["--json", path])
        #expect(command.json && command.path == path)
        try command.run()
        try InspectCommand.parse([path, "--format", "raw"]).run()
    }

    @Test func rejectsUnknownFormat() {
        #expect(throws: (any Error).self) { try InspectCommand.parse(["--format", "floppy", "x.img"]) }
    }

    @Test func missingFileIsAnError() {
        #expect(throws: (any Error).self) { try InspectCommand.parse(["/nonexistent/disk.img"]).run() }
    }
}
