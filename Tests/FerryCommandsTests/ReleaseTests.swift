import ArgumentParser
@testable import FerryCommands
import FerryTestSupport
import Foundation
import Testing

/// What the release binary promises a user on a rescue system (issues 10 and 17): its
/// arguments without /proc, a version line, one real example per command, current completions.
@Suite struct ReleaseTests {
    /// The package root, where completions/ is committed.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func argumentsComeFromTheKernelNotProc() {
        // This test process got its argv from the kernel too; CFerryLaunch's constructor saw it.
        #expect(LaunchCheck.problem() == nil, "arguments: \(CommandLine.arguments)")
        // What Swift sees when /proc/self/cmdline cannot be read: nothing at all.
        let unreadable = "ferry: error: cannot read the command line: /proc is not mounted (mount -t proc proc /proc, then retry)"
        #expect(LaunchCheck.problem(arguments: []) == unreadable)
        #expect(LaunchCheck.problem(arguments: CommandLine.arguments + ["extra"]) == unreadable)
    }

    @Test func withoutProcOnlyVersionAndHelpRun() {
        let noProc = "ferry: error: /proc is not mounted; ferry needs it to run (mount -t proc proc /proc, then retry)"
        #expect(LaunchCheck.problem(arguments: CommandLine.arguments, procIsMounted: true) == nil)
        #expect(LaunchCheck.answersWithoutThreads(["--version"]))
        #expect(LaunchCheck.answersWithoutThreads(["copy", "--help"]))
        #expect(LaunchCheck.answersWithoutThreads(["help", "send"]))
        #expect(!LaunchCheck.answersWithoutThreads(["copy", "a", "b"]))
        #expect(!LaunchCheck.answersWithoutThreads([]))
        #expect(!LaunchCheck.answersWithoutThreads(["--version", "copy"]))
        // This test process's own arguments name no --version or --help.
        #expect(LaunchCheck.problem(arguments: CommandLine.arguments, procIsMounted: false) == noProc)
    }

    /// Issue 17, as a user on a rescue shell without /proc meets it: --version works, and a
    /// command refuses in one line with exit 72, writing nothing. Before the fix ferry printed
    /// the top-level help and exited 0 (no arguments), or trapped at a random moment in
    /// libdispatch's thread-pool monitor (it reads /proc/TID/stat).
    @Test func withoutProcVersionWorksAndCommandsRefuseInOneLine() throws {
        guard Tools.requireRoot("hiding /proc in a mount namespace"), Tools.require("unshare", "mount") else { return }
        let dir = try TemporaryDirectory()
        var rng = SeededRandom(seed: 17)
        let source = dir.file("disk.raw")
        try writeSparseFile(source, size: 4 << 20, layout: [(0, rng.bytes(4096)), (1 << 20, rng.bytes(100_000))])
        let target = dir.file("copy.raw")
        // A fresh tmpfs over /proc in a private mount namespace: /proc/self/cmdline is gone.
        func withoutProc(_ arguments: String) throws -> ToolResult {
            // The inner shell gets the executable as $0 (FERRY is not exported).
            let script = "mount -t tmpfs none /proc && test ! -e /proc/self/cmdline && exec \"$0\" \(arguments)"
            return try FerryExecutable.shell("exec unshare --mount --propagation private /bin/sh -c '\(script)' \"$FERRY\"")
        }
        let version = try withoutProc("--version")
        #expect(version.status == 0 && version.stdout == BuildInfo.versionLine + "\n", "\(version.stdout)\(version.stderr)")
        let copy = try withoutProc("copy \(source) \(target) --progress none")
        #expect(copy.status == 72, "\(copy.stdout)\(copy.stderr)")
        #expect(copy.stdout.isEmpty, "printed help instead of refusing: \(copy.stdout)")
        #expect(copy.stderr == "ferry: error: /proc is not mounted; ferry needs it to run (mount -t proc proc /proc, then retry)\n")
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(!FileManager.default.fileExists(atPath: LocalTargetName.partial(target)))
    }

    @Test func versionNamesTheBuild() throws {
        let result = try FerryExecutable.run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout == BuildInfo.versionLine + "\n")
        #expect(BuildInfo.versionLine.hasPrefix(BuildInfo.version + " ("))
        #expect(BuildInfo.version.split(separator: ".").count == 3)
    }

    /// Every command's help shows an example, and the example parses: its flags exist.
    @Test func everyHelpShowsAnExampleThatParses() throws {
        let commands: [any ParsableCommand.Type] = [Ferry.self] + Ferry.configuration.subcommands
        for command in commands {
            let help = Ferry.helpMessage(for: command, columns: 200)
            let examples = help.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("ferry ") }
            let name = command.configuration.commandName ?? "?"
            #expect((help.contains("Example:") || help.contains("Examples:")) && !examples.isEmpty, "ferry \(name) --help shows no example")
            for example in examples {
                let words = example.split(separator: " ").dropFirst().map(String.init)
                #expect(command == Ferry.self || words.first == name, "the example of \(name) runs another command: \(example)")
                #expect(throws: Never.self, "the example does not parse: \(example)") { _ = try Ferry.parseAsRoot(words) }
            }
        }
    }

    @Test func sendSaysWhatItDoesWithoutItsCodecs() {
        let both = CodecNotice.lines(digest: .xxh3, compress: .auto, xxh3Available: false, zstdAvailable: false)
        #expect(both.count == 2)
        #expect(both.first?.contains("libxxhash.so.0 is not installed: blocks are hashed with SHA-256") == true)
        #expect(both.last?.contains("libzstd.so.1 is not installed") == true)
        #expect(CodecNotice.lines(digest: .xxh3, compress: .auto, xxh3Available: true, zstdAvailable: true).isEmpty)
        // The default (no --digest) is xxh3 where it loads: a send without it says so too.
        #expect(CodecNotice.lines(digest: nil, compress: .none, xxh3Available: false, zstdAvailable: true).count == 1)
        #expect(CodecNotice.lines(digest: nil, compress: .none, xxh3Available: true, zstdAvailable: true).isEmpty)
        // Nothing to say when the user chose what needs no library.
        #expect(CodecNotice.lines(digest: .sha256, compress: .none, xxh3Available: false, zstdAvailable: false).isEmpty)
    }

    /// completions/ holds what the parser generates today (regenerate: Scripts/generate-docs.sh).
    @Test(arguments: [(CompletionShell.bash, "ferry.bash"), (.zsh, "_ferry"), (.fish, "ferry.fish")])
    func committedCompletionsAreCurrent(shell: CompletionShell, file: String) throws {
        let committed = try String(contentsOf: Self.root.appendingPathComponent("completions/\(file)"), encoding: .utf8)
        // `--generate-completion-script` prints the script and a newline.
        #expect(committed == Ferry.completionScript(for: shell) + "\n", "completions/\(file) is stale: run Scripts/generate-docs.sh")
    }
}
