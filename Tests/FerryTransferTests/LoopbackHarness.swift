import FerryCopy
import FerryDisk
import FerryProtocol
import FerryTestSupport
import FerryTransfer
import Foundation
import Synchronization
import Testing

/// Temporary directories, disk files with a known mix of data and zeros, and a
/// receiver started on 127.0.0.1 port 0 whose bound port the test learns.
enum Loopback {
    /// A fresh directory, removed when the test process exits (the disks in it reach
    /// hundreds of MiB; left behind, a few dozen runs filled this machine's disk).
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "ferry-net-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        createdDirectories.withLock { made in
            if made.isEmpty { atexit { Loopback.removeCreatedDirectories() } }
            made.append(path)
        }
        return path
    }

    private static let createdDirectories = Mutex<[String]>([])

    static func removeCreatedDirectories() {
        for path in createdDirectories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A disk of `size` bytes: seeded random data with zero stretches (whole zero
    /// blocks and a hole), so data, zero and short-last-block paths all run.
    static func makeDisk(at path: String, size: Int, seed: UInt64) throws -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var bytes = [UInt8](repeating: 0, count: size)
        var i = 0
        while i < size {
            let run = min(size - i, Int(rng.next() % 300_000) + 1)
            if rng.next() % 3 != 0 {
                for j in i..<i + run { bytes[j] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            i += run
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return bytes
    }

    static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array($0) }
    }

    /// Starts a receiver; returns its task and the port it bound.
    /// Runs `body` and fails (throws) when it has not finished after `seconds`, instead of
    /// hanging the whole test run: a test stuck in a wait that ignores cancellation (seen with
    /// the loop-device transfers, intermittently, on a loaded machine) is left behind, cancelled,
    /// and the run goes on. Swift Testing's time limit cannot do this: it waits for the test.
    ///
    /// `knownHang` names a hang that is known and not yet understood: when the watchdog fires,
    /// it is recorded as a known issue (printed, not failing the run), and so is an error that
    /// `alsoKnown` says is the same trouble showing differently; every other failure of
    /// `body` still fails the test.
    static func bounded(
        _ seconds: Double, _ what: String, knownHang: Comment? = nil, alsoKnown: (@Sendable (any Error) -> Bool)? = nil,
        _ body: @escaping @Sendable () async throws -> Void
    )
        async throws
    {
        let (results, continuation) = AsyncStream<Result<Void, any Error>>.makeStream()
        let work = Task {
            do {
                try await body()
                continuation.yield(.success(()))
            } catch {
                continuation.yield(.failure(error))
            }
        }
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            guard !Task.isCancelled else { return }
            let stacks = dumpThreads(what)
            continuation.yield(.failure(HangError(description: "\(what) was still running after \(Int(seconds)) s (a hang; left behind)\(stacks)")))
        }
        var iterator = results.makeAsyncIterator()
        let first = await iterator.next()
        timer.cancel()
        work.cancel()
        continuation.finish()
        if case .failure(let error as HangError) = first, let knownHang {
            withKnownIssue(knownHang, isIntermittent: true) { throw error }
            return
        }
        if case .failure(let error) = first, let knownHang, let alsoKnown, alsoKnown(error) {
            withKnownIssue(knownHang, isIntermittent: true) { throw error }
            return
        }
        try first?.get()
    }

    struct HangError: Error, CustomStringConvertible { var description: String }

    /// Every thread's stack at the moment of a hang, written by gdb (when installed) to a file
    /// beside the test's temporary files: the evidence a hang that never repeats alone needs.
    private static func dumpThreads(_ what: String) -> String {
        guard Tools.find("gdb") != nil else { return "" }
        let file = NSTemporaryDirectory() + "ferry-hang-\(getpid())-\(what.prefix(40)).txt"
        // gdb writes to the file, never to a pipe: it stops every thread of this process while it
        // works, the threads that drain a pipe too, and with a pipe it blocked on its own output
        // for the rest of a CI run. `timeout` bounds it whatever happens.
        let script = "timeout -s KILL 120 gdb -p \(getpid()) -batch -ex 'thread apply all bt' > '\(file)' 2>&1"
        guard (try? Tools.run("/bin/sh", ["-c", script], limit: 150)) != nil else { return "" }
        return "; thread stacks in \(file)"
    }

    static func startReceiver(_ config: ReceiveConfiguration) async throws -> (Task<TransferSummary, any Error>, Int) {
        var config = config
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        config.announce = { continuation.yield($0.listen.port) }
        config.progress = .none
        let task = Task {
            // Finished however the receiver ends: one that fails before it listens (a port
            // taken) fails the test instead of leaving it waiting for a port forever.
            defer { continuation.finish() }
            return try await TransferReceiver.run(config)
        }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TransferError(.network, "receiver did not start") }
        return (task, port)
    }

    /// A plain receiver on port 0 with resume at 1 MiB granularity (segments,
    /// checkpoints and acks), so a cut in a few-MiB test leaves journaled segments.
    static func resumableReceiver(targets: [String], retry: Double = 0) -> ReceiveConfiguration {
        var rc = ReceiveConfiguration(targets: targets, listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        rc.segmentSize = 1 << 20
        rc.checkpointBytes = 1 << 20
        rc.ackBytes = 1 << 20
        rc.retryFor = retry
        return rc
    }

    static func sendConfig(port: Int, code: PairingCode?) -> SendConfiguration {
        var config = SendConfiguration(destination: HostPort(host: "127.0.0.1", port: port)).withTestTimeouts()
        config.code = code
        config.insecure = code == nil
        config.progress = .none
        return config
    }

    /// The block hash a default session agrees on: xxh3 when this host has libxxhash.
    static let sessionLeaf: LeafHash = LeafHash.xxh3.isAvailable ? .xxh3 : .sha256

    /// The digest of a file computed by the local copy engine: an independent path.
    static func digest(of path: String, leaf: LeafHash = Loopback.sessionLeaf) throws -> DiskDigest? {
        let device = try FileDevice.openForReading(path)
        defer { try? device.close() }
        var options = CopyOptions()
        options.leaf = leaf
        return try CopyEngine.run(source: device, target: nil, options: options).digest
    }
}

/// The transfer tests' seeded generator: FerryTestSupport's SplitMix64.
typealias SplitMix = SeededRandom

enum FerryCopyLeaf {
    static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { BlockHash(of: bytes).bytes }
}

extension Loopback {
    /// All random bytes (no zero blocks), so every block crosses the wire unless resumed.
    static func makeRandomDisk(at path: String, size: Int, seed: UInt64) throws -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var bytes = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 8) {
            var v = rng.next()
            for j in i..<min(i + 8, size) {
                bytes[j] = UInt8(truncatingIfNeeded: v)
                v >>= 8
            }
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return bytes
    }
}

/// In-process sessions share the machine with every other suite (QEMU boots, mkntfs, hivex):
/// a loaded 2-core machine has starved one for longer than the 30 s defaults, and a test of
/// something else then failed on liveness. The liveness and pairing tests set their own values.
extension ReceiveConfiguration {
    func withTestTimeouts() -> ReceiveConfiguration {
        var config = self
        config.idleTimeout = 120
        config.helloTimeout = 120
        return config
    }
}

extension SendConfiguration {
    func withTestTimeouts() -> SendConfiguration {
        var config = self
        config.idleTimeout = 120
        return config
    }
}

/// Every suite that runs a sender and a receiver in this process, one test at a time. Side by
/// side they collided: a sender reconnecting after a cut (resume) reached another test's new
/// receiver on the port its own had freed, and an insecure receiver took it for its sender.
@Suite(.serialized, .timeLimit(.minutes(5))) enum InProcessNetwork {}
