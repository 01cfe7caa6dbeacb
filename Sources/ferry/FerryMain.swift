import FerryCommands

#if canImport(Glibc)
import Glibc
#endif

// The executable is only this: every command lives in FerryCommands, so tests can call them.
// Process-wide tuning belongs here, not in the libraries.
@main enum FerryMain {
    static func main() async {
        // Never run a command on arguments the process could not read, nor without /proc (issue 17).
        LaunchCheck.exitIfUnable()
        MemoryTuning.apply()
        await Ferry.main()
    }
}

/// Keeps glibc from returning 1 MiB request buffers to the kernel after every use.
///
/// Each transfer request allocates a fresh 1–4 MiB buffer that travels into NIO and is
/// freed when written. Above glibc's mmap threshold every such buffer is a fresh mmap
/// whose 256+ pages all fault in on first touch, and an munmap afterwards: at 1 GB/s
/// that is a quarter of a million page faults per second, a large share of a transfer's
/// CPU. Raising the thresholds makes freed buffers reusable heap memory; the number in
/// flight is bounded (workers × request size plus socket buffers), so RSS stays
/// bounded. `mallopt` is looked up at run time: Swift's Glibc module does not export
/// malloc.h, and a libc without it (musl) simply keeps its defaults.
enum MemoryTuning {
    // glibc malloc.h: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3, M_ARENA_MAX -8.
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32

    static func apply() {
        #if canImport(Glibc)
        guard let libc = dlopen("libc.so.6", RTLD_NOW), let symbol = dlsym(libc, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-3, 8 << 20)
        _ = mallopt(-1, 16 << 20)
        _ = mallopt(-8, 2)
        #endif
    }
}
