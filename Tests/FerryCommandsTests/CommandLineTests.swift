import FerryTestSupport
import FerryCopy
import Foundation
import Testing

enum LocalTargetName {
    static func partial(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".ferry-partial").path
    }
}

/// The `ferry` executable as a user runs it: real processes, real files, exit codes.
@Suite struct CommandLineTests {
    func sample(_ dir: TemporaryDirectory, seed: UInt64 = 1) throws -> String {
        var rng = SeededRandom(seed: seed)
        let path = dir.file("disk.raw")
        try writeSparseFile(path, size: 8 << 20, layout: [(0, rng.bytes(4096)), (3 << 20, rng.bytes(200_000))])
        return path
    }

    @Test func copyThenChecksumAgree() throws {
        let dir = try TemporaryDirectory()
        let source = try sample(dir)
        let copy = try FerryExecutable.run(["copy", source, dir.file("copy.raw"), "--verify", "--progress", "none"])
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(copy.stdout.contains("verified"))
        let sum = try FerryExecutable.run(["checksum", source, dir.file("copy.raw")])
        #expect(sum.status == 0)
        let digests = sum.stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        #expect(digests.count == 2 && digests[0] == digests[1])
        // By default the copy's printed digest is the one a later `ferry checksum` prints.
        #expect(digests.first.map { copy.stdout.contains("digest \($0)\n") } == true, "\(copy.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: source)) == Data(contentsOf: URL(fileURLWithPath: dir.file("copy.raw"))))
    }

    /// The digest word of `ferry checksum ARGS` (its first line's first field).
    func checksum(_ arguments: [String]) throws -> String {
        let result = try FerryExecutable.run(["checksum"] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return String(result.stdout.split(separator: " ").first ?? "")
    }

    /// The digest `ferry copy ARGS` prints after `digest `.
    func copyDigest(_ arguments: [String]) throws -> String {
        let result = try FerryExecutable.run(["copy"] + arguments + ["--progress", "none"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("digest ") }
        return String(line?.dropFirst("digest ".count) ?? "")
    }

    @Test(.enabled(if: LeafHash.xxh3.isAvailable, "the default is xxh3 only where libxxhash.so.0 loads"))
    func copyAndChecksumDefaultToXXH3() throws {
        let dir = try TemporaryDirectory()
        let source = try sample(dir, seed: 3)
        let copied = try copyDigest([source, dir.file("copy.raw"), "--verify"])
        let summed = try checksum([dir.file("copy.raw")])
        let xxh3 = try checksum(["--digest", "xxh3", source])
        let sha256 = try checksum(["--digest", "sha256", source])
        #expect(copied.hasPrefix("xxh3:") && copied.count == 5 + 64, "\(copied)")
        #expect(copied == summed && summed == xxh3)
        // SHA-256 is printed as bare hex, like sha256sum, and is another value.
        #expect(sha256.count == 64 && sha256.allSatisfy(\.isHexDigit), "\(sha256)")
        #expect(!xxh3.hasSuffix(sha256))
        #expect(try copyDigest([source, dir.file("sha.raw"), "--digest", "sha256"]) == sha256)
    }

    @Test func digestSHA256IsBlkhash() throws {
        // blkhash's vector for one 64 KiB block of 0x41 (DigestVectorTests.oneDataBlock).
        let dir = try TemporaryDirectory()
        let path = dir.file("a.raw")
        try Data(repeating: 0x41, count: 64 * 1024).write(to: URL(fileURLWithPath: path))
        let blkhash = "3fe9a19c59cc0320c1bb605e3cbf3ecd35a295a1f7a2b4e5ebc1efdd1f5ebb8c"
        #expect(try checksum(["--digest", "sha256", path]) == blkhash)
        #expect(try copyDigest([path, dir.file("b.raw"), "--digest", "sha256", "--verify"]) == blkhash)
        // The sha256sum-shaped line: the hex, two spaces, the name.
        let line = try FerryExecutable.run(["checksum", "--digest", "sha256", path])
        #expect(line.stdout == "\(blkhash)  \(path)\n")
    }

    @Test func pipesInAndOut() throws {
        let dir = try TemporaryDirectory()
        let source = try sample(dir, seed: 2)
        let result = try FerryExecutable.shell(
            "\"$FERRY\" copy '\(source)' - --progress none | \"$FERRY\" copy - '\(dir.file("piped.raw"))' --size 8M --progress none")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: source)) == Data(contentsOf: URL(fileURLWithPath: dir.file("piped.raw"))))
        let viaStdin = try FerryExecutable.shell("\"$FERRY\" checksum - --size 8M < '\(source)'; \"$FERRY\" checksum '\(source)'")
        let digests = viaStdin.stdout.split(separator: "\n").map { $0.split(separator: " ")[0] }
        #expect(digests.count == 2 && digests[0] == digests[1])
    }

    @Test func badInputGivesOneLineAndDistinctCodes() throws {
        let dir = try TemporaryDirectory()
        let source = try sample(dir)
        let missing = try FerryExecutable.run(["copy", dir.file("nope.raw"), dir.file("out.raw")])
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("No such file"))
        let directory = try FerryExecutable.run(["copy", dir.path, dir.file("out.raw")])
        #expect(directory.status == 66)
        #expect(directory.stderr.contains("is a directory"))
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: dir.file("exists.raw")))
        let exists = try FerryExecutable.run(["copy", source, dir.file("exists.raw")])
        #expect(exists.status == 73)
        #expect(exists.stderr.contains("--overwrite"))
        #expect(try String(contentsOfFile: dir.file("exists.raw"), encoding: .utf8) == "keep me")
        let stdinWithoutSize = try FerryExecutable.run(["copy", "-", dir.file("out2.raw")])
        #expect(stdinWithoutSize.status != 0)
        #expect(stdinWithoutSize.stderr.contains("--size"))
        let usage = try FerryExecutable.run(["copy", source])
        #expect(usage.status == 64)
        for result in [missing, directory, exists] {
            #expect(result.stderr.split(separator: "\n").count == 1, "one clear line: \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.raw")))
    }

    @Test func shortStdinIsAnErrorAndLeavesNoTarget() throws {
        let dir = try TemporaryDirectory()
        let result = try FerryExecutable.run(["copy", "-", dir.file("out.raw"), "--size", "1M"], stdin: Data(count: 1000))
        #expect(result.status == 74)
        #expect(result.stderr.contains("ended after"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.raw")))
        #expect(!FileManager.default.fileExists(atPath: dir.file(".out.raw.ferry-partial")))
    }

    @Test func jsonProgressLinesParse() throws {
        let dir = try TemporaryDirectory()
        let source = try sample(dir)
        let result = try FerryExecutable.run(["copy", source, dir.file("copy.raw"), "--progress", "json"])
        #expect(result.status == 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(!lines.isEmpty)
        let last = try JSONSerialization.jsonObject(with: Data(lines[lines.count - 1].utf8)) as? [String: Any]
        #expect(last?["phase"] as? String == "copy")
        #expect(last?["bytes"] as? Int == 8 << 20)
        #expect(last?["total"] as? Int == 8 << 20)
        // The final line names the stage that limited the whole copy.
        let stages = Stage.allCases.map(\.rawValue)
        #expect(stages.contains(last?["bottleneck"] as? String ?? "none"), "\(String(lines[lines.count - 1]))")
    }

    @Test func interruptedCopyWarnsOnChecksum() throws {
        let dir = try TemporaryDirectory()
        let source = try sample(dir)
        // A partial file left behind by an earlier, killed copy.
        try Data(count: 10).write(to: URL(fileURLWithPath: dir.file(".copy.raw.ferry-partial")))
        try Data(contentsOf: URL(fileURLWithPath: source)).write(to: URL(fileURLWithPath: dir.file("copy.raw")))
        let result = try FerryExecutable.run(["checksum", dir.file("copy.raw")])
        #expect(result.status == 0)
        #expect(result.stderr.contains("interrupted"))
    }

    @Test func ctrlCStopsACopyBlockedOnAPipeAndRemovesThePartialFile() throws {
        let dir = try TemporaryDirectory()
        let target = dir.file("out.raw")
        // The pipe delivers 1 MiB and then stays silent for 4 s: ferry sits waiting for data
        // and must leave on Ctrl-C at 1.5 s, long before the pipe would close.
        let result = try FerryExecutable.shell("""
            mkfifo '\(dir.file("fifo"))'
            (head -c 1048576 /dev/urandom; exec sleep 4) > '\(dir.file("fifo"))' 2>/dev/null &
            producer=$!
            "$FERRY" copy - '\(target)' --size 64M --progress none < '\(dir.file("fifo"))' &
            pid=$!
            sleep 1.5
            kill -INT $pid
            wait $pid
            rc=$?
            kill $producer
            exit $rc
            """)
        #expect(result.status == 130, "\(result.stderr)")
        #expect(result.stderr.contains("interrupted"))
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(!FileManager.default.fileExists(atPath: LocalTargetName.partial(target)))
    }

    @Test func demoRunsToTheEnd() throws {
        let result = try FerryExecutable.run(["demo"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Demo complete"))
    }

    /// The demo's story (issue 11): inspect finds the 0x7B on the sample Windows 2003 guest,
    /// `ferry fix` turns the verdict green in the received copy, hivexget reads the edit, and
    /// the plan boots the guest from IDE.
    @Test func demoFindsTheBlueScreenFixesItAndHivexConfirms() throws {
        guard Tools.require("hivexget", why: "the demo checks the fixed hive with it") else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-demo-story-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try FerryExecutable.run(["demo", "--directory", dir, "--keep"])
        #expect(result.status == 0, "\(result.stderr)")
        let out = result.stdout
        #expect(out.contains("Windows: Microsoft Windows Server 2003 5.2 build 3790"), "\(out.prefix(3000))")
        #expect(out.contains("[FAIL] boot-ide: will stop with 0x7B"))
        #expect(out.contains("boot-ide          blocker → ok"))
        #expect(out.contains("libhivex, the library virt-v2v uses, reads the edit"))
        #expect(out.contains("disk-bus     ide"))
        // The source the demo made is untouched by the fix: it still shows the 0x7B.
        let inspect = try FerryExecutable.run(["inspect", dir + "/win2003.vmdk"])
        #expect(inspect.stdout.contains("[FAIL] boot-ide"), "\(inspect.stdout)")
        let fixed = try FerryExecutable.run(["inspect", dir + "/vda.raw"])
        #expect(fixed.stdout.contains("[ok  ] boot-ide"), "\(fixed.stdout)")
    }
}
