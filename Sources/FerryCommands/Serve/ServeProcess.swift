import CFerryShims
import FerryDisk
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT, SIGTERM and SIGCHLD as bytes on a pipe (Sources/CFerryShims/signals.c), which
/// `ferry serve` waits on with poll(2).
///
/// A handler is process-wide: whichever thread the kernel picks (an NIO event loop, a
/// thread pool worker) runs it, so the signal always reaches ferry's teardown. Blocking the
/// signals with `pthread_sigmask` and `sigwait` instead binds only the calling thread, and
/// the threads NIO started earlier kept the default action: SIGTERM killed ferry (exit 143)
/// and left the unix socket behind.
struct ServeSignals {
    /// One signal as the handler saw it.
    struct Received: Equatable {
        var number: Int32
        /// Sent by the kernel: a terminal's Ctrl-C, which the whole foreground process group got.
        var fromTerminal: Bool
    }

    static let stopSignals: [Int32] = [SIGINT, SIGTERM]

    private let fd: Int32

    /// The handlers are installed once per process, on first use.
    private static let installed: Int32 = {
        let signals: [Int32] = stopSignals + [SIGCHLD]
        return signals.withUnsafeBufferPointer { ferry_signal_pipe($0.baseAddress, Int32($0.count)) }
    }()

    /// Routes SIGINT, SIGTERM and SIGCHLD to the pipe from now on.
    static func install() throws -> ServeSignals {
        let fd = installed
        guard fd >= 0 else { throw DiskError.system(-fd, "SIGINT, SIGTERM and SIGCHLD handlers", operation: "install") }
        return ServeSignals(fd: fd)
    }

    /// Waits up to `milliseconds` (-1: until one arrives) and returns the signals received.
    func wait(milliseconds: Int32) -> [Received] {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, milliseconds) > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return [] }
        return stride(from: 0, to: count - 1, by: 2).map { Received(number: Int32(bytes[$0]), fromTerminal: bytes[$0 + 1] != 0) }
    }

    /// Gives SIGINT and SIGTERM their default action back: once ferry is stopping, a second
    /// one ends a teardown that hangs.
    static func restoreStopDefaults() {
        for number in stopSignals { signal(number, SIG_DFL) }
    }
}

/// `--run`'s command: `/bin/sh -c CMD` with every signal at its default disposition and an
/// empty mask (ferry ignores SIGPIPE; an inherited ignore would make `CMD | head` spin on
/// EPIPE instead of ending), and only stdin, stdout and stderr open.
struct ServeChild {
    let pid: pid_t

    static func spawn(_ command: String, environment: [String: String]) throws -> ServeChild {
        let arguments = ["/bin/sh", "-c", command]
        let variables = environment.map { "\($0.key)=\($0.value)" }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = variables.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let result = ferry_spawn_clean(&pid, "/bin/sh", argv, envp)
        guard result == 0 else { throw DiskError.system(-result, "/bin/sh -c \(command)", operation: "run") }
        return ServeChild(pid: pid)
    }

    /// The command's exit status (128+N when signal N ended it), or nil while it runs.
    func reap() -> Int32? {
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        guard reaped == pid else { return reaped < 0 && errno == ECHILD ? 1 : nil }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}
