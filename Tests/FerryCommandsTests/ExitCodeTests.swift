import FerryTestSupport
import Foundation
import Testing

/// One exit-code table for every command (README, "Exit codes"): the same failure gives
/// the same code and one line, whichever command meets it.
@Suite struct ExitCodeTests {
    /// A file that starts like a qcow2 image but whose header is cut short.
    func truncatedQCOW2(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("cut.qcow2")
        try Data([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3] + [UInt8](repeating: 0, count: 20)).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aDamagedImageIs65ForCopyChecksumAndInspect() throws {
        let dir = try TemporaryDirectory()
        let image = try truncatedQCOW2(dir)
        for arguments in [["copy", image, dir.file("out.raw")], ["checksum", image], ["inspect", image]] {
            let result = try FerryExecutable.run(arguments)
            #expect(result.status == 65, "\(arguments[0]): \(result.status) \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments[0]) prints one line: \(result.stderr)")
            #expect(result.stderr.contains("qcow2"), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.raw")))
    }

    @Test func aMissingSourceIs66ForEveryCommandThatReads() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.file("nope.raw")
        let commands = [
            ["copy", missing, dir.file("out.raw")], ["checksum", missing], ["inspect", missing],
            // The source is opened before any connection is tried.
            ["send", missing, "127.0.0.1:9", "--code", "4t4t-30z7-zpd5-wvv8", "--retry-for", "0"],
        ]
        for arguments in commands {
            let result = try FerryExecutable.run(arguments)
            #expect(result.status == 66, "\(arguments[0]): \(result.status) \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments[0]) prints one line: \(result.stderr)")
            #expect(result.stderr.contains("nope.raw"), "\(result.stderr)")
        }
    }

    @Test func checksumPrintsEachErrorOnceAndGoesOn() throws {
        let dir = try TemporaryDirectory()
        let good = dir.file("good.raw")
        try Data(count: 4096).write(to: URL(fileURLWithPath: good))
        let result = try FerryExecutable.run(["checksum", dir.file("nope.raw"), good])
        #expect(result.status == 66)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stdout.contains("good.raw"), "the readable path is still summed")
    }

    @Test func everyCommandsHelpShowsTheWholeTable() throws {
        for command in ["copy", "checksum", "send", "receive", "inspect"] {
            let help = try FerryExecutable.run([command, "--help"])
            #expect(help.status == 0)
            let text = help.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            for code in ["3 verification failed", "65 damaged", "66 source not found", "73 target cannot", "77 authentication failed"] {
                #expect(text.contains(code), "\(command) --help lacks '\(code)'")
            }
        }
    }

    @Test func badOptionValuesAreUsageErrors() throws {
        let dir = try TemporaryDirectory()
        let limit = try FerryExecutable.run(["send", dir.file("x"), "127.0.0.1:9", "--limit", "fast"])
        #expect(limit.status == 64, "\(limit.stderr)")
        let progress = try FerryExecutable.run(["receive", dir.file("x"), "--progress", "loud"])
        #expect(progress.status == 64, "\(progress.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("x")))
    }

    /// A device target found too small only once the sender described the disk: the
    /// receiver exits 73 like `ferry copy` does (it was 74 through a protocol message), the
    /// sender hears why, and nothing is written to the device.
    @Test func aTooSmallDeviceIs73ForReceiveToo() throws {
        let dir = try TemporaryDirectory()
        let backing = dir.file("small.img")
        #expect(FileManager.default.createFile(atPath: backing, contents: Data(count: 1 << 20)))
        guard let loop = try LoopDevice.attach(backing) else { return }
        defer { LoopDevice.detach(loop) }
        let source = dir.file("disk.raw")
        var rng = SeededRandom(seed: 5)
        try Data(rng.bytes(4 << 20)).write(to: URL(fileURLWithPath: source))
        let code = "4t4t-30z7-zpd5-wvv8"
        let result = try FerryExecutable.shell("""
            "$FERRY" receive '\(loop)' --listen 127.0.0.1:0 --code \(code) --retry-for 0 --progress none 2> '\(dir.file("recv.err"))' &
            pid=$!
            for i in $(seq 200); do grep -q "listening on" '\(dir.file("recv.err"))' && break; sleep 0.05; done
            port=$(sed -n 's/.*listening on 127.0.0.1:\\([0-9]*\\).*/\\1/p' '\(dir.file("recv.err"))' | head -1)
            "$FERRY" send '\(source)' 127.0.0.1:$port --code \(code) --retry-for 0 --progress none 2> '\(dir.file("send.err"))'
            echo "send=$?"
            wait $pid
            echo "receive=$?"
            """)
        let receiveErr = (try? String(contentsOfFile: dir.file("recv.err"), encoding: .utf8)) ?? ""
        #expect(result.stdout.contains("receive=73"), "\(result.stdout) \(receiveErr)")
        #expect(!result.stdout.contains("send=0"), "\(result.stdout)")
        #expect(receiveErr.contains("too") || receiveErr.contains("holds"), "\(receiveErr)")
        #expect(try LoopDevice.firstBlock(loop).allSatisfy { $0 == 0 }, "nothing was written to the device")
    }
}
