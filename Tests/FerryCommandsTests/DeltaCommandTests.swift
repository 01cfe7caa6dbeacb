import FerryTestSupport
import Foundation
import Testing

/// `--sync` needs a two-way session: with a one-way stream or a raw one it is a usage error
/// (exit 64, one line), and nothing is written.
@Suite struct DeltaCommandTests {
    @Test func syncWithAOneWayStreamIsAUsageError() throws {
        let dir = try TemporaryDirectory()
        try Data(repeating: 7, count: 1 << 20).write(to: URL(fileURLWithPath: dir.file("src.raw")))
        let send = try FerryExecutable.run(["send", dir.file("src.raw"), "-", "--sync"])
        #expect(send.status == 64, "\(send.stderr)")
        #expect(send.stderr.contains("--sync"))
        #expect(send.stdout.isEmpty)
        let receive = try FerryExecutable.run(["receive", dir.file("dst.raw"), "--stdin", "--sync"])
        #expect(receive.status == 64, "\(receive.stderr)")
        #expect(receive.stderr.split(separator: "\n").count == 1, "\(receive.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("dst.raw")))
        let raw = try FerryExecutable.run(["send", dir.file("src.raw"), "127.0.0.1:9", "--raw", "--sync"])
        #expect(raw.status == 64, "\(raw.stderr)")
    }
}
