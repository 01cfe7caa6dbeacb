import ArgumentParser
import CFerryLaunch
import Foundation

/// Whether ferry can run here at all, checked before any command starts (issue 17).
///
/// Without /proc two things break. Swift on Linux reads the arguments from
/// /proc/self/cmdline; CFerryLaunch's constructor hands the runtime the kernel's own vector
/// first, so ferry still knows what it was asked (had it not, it would see no arguments,
/// print its help and exit 0). And libdispatch, the thread pool under Swift concurrency,
/// reads /proc/TID/stat once a second while work is queued and traps when it cannot
/// (event/workqueue.c, "workq: registered worker exited prematurely"): a command would die
/// at a random moment. So without /proc only --version and --help run; every command
/// refuses at once with one line and exit 72, before it opens or writes anything.
public enum LaunchCheck {
    /// "/proc" is mounted: a process can see its own threads there.
    public static var procIsMounted: Bool { access("/proc/self/stat", R_OK) == 0 }

    /// Nil when ferry may run `arguments` (CommandLine.arguments, program name first);
    /// otherwise the one line to print before exiting with `FerryExit.osFile`.
    public static func problem(arguments: [String] = CommandLine.arguments, procIsMounted: Bool = procIsMounted) -> String? {
        let kernelCount = Int(ferry_launch_argc())
        guard !arguments.isEmpty, kernelCount < 0 || kernelCount == arguments.count else {
            return "ferry: error: cannot read the command line: /proc is not mounted (mount -t proc proc /proc, then retry)"
        }
        if procIsMounted || answersWithoutThreads(Array(arguments.dropFirst())) { return nil }
        return "ferry: error: /proc is not mounted; ferry needs it to run (mount -t proc proc /proc, then retry)"
    }

    /// --version and --help print text and need no thread pool.
    static func answersWithoutThreads(_ arguments: [String]) -> Bool {
        arguments == ["--version"] || arguments.first == "help" || arguments.contains("--help") || arguments.contains("-h")
    }

    /// Exits with `FerryExit.osFile` and the one line when ferry cannot run here. Without
    /// /proc it answers --version and --help itself, synchronously: no task may reach
    /// libdispatch's pool, whose monitor can trap within its first second.
    public static func exitIfUnable() {
        if let problem = problem() {
            try? FileHandle.standardError.write(contentsOf: Data((problem + "\n").utf8))
            exit(FerryExit.osFile.rawValue)
        }
        guard !procIsMounted else { return }
        do {
            // --version and --help end as CleanExit; only `help SUBCOMMAND` parses to a command.
            var command = try Ferry.parseAsRoot(Array(CommandLine.arguments.dropFirst()))
            guard !(command is any AsyncParsableCommand) else { return }
            try command.run()
            exit(FerryExit.success.rawValue)
        } catch {
            Ferry.exit(withError: error)
        }
    }
}
