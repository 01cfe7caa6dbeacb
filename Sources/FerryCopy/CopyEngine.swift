import CFerryShims
public import FerryDisk
import Foundation
import Synchronization

/// How the copy engine runs.
public struct CopyOptions: Sendable {
    /// Bytes per read request; a multiple of the 64 KiB digest block.
    public var requestSize = 2 << 20
    /// Requests in flight (worker threads), when both ends allow random access. One per
    /// core, at least 2: more threads than cores only fight over the target inode's lock
    /// (measured: 4 workers on 2 cores tripled system time on ext4).
    public var workers = min(8, max(2, ProcessInfo.processInfo.activeProcessorCount))
    /// The target already reads as zeros: zero runs need no writing at all.
    public var targetIsZero = false
    /// Compute the disk digest on the fly.
    public var computeDigest = true
    /// The digest's block hash (`--digest`).
    public var leaf = LeafHash.sha256
    /// Consult the source's extents to skip holes without reading them.
    public var useExtents = true
    /// Reads kept in flight ahead of the workers (`CopyReadAhead`), for a random-access copy;
    /// nil: `remoteReadAhead` when the source is `.remote` (its reads mostly wait), else none.
    public var readAhead: Int?
    /// The read-ahead for a remote source: enough reads in flight to keep a server's threads
    /// busy while the workers hash and write (16 MiB of buffers with 2 MiB requests).
    public static let remoteReadAhead = 8

    public init() {}
}

/// What a copy did.
public struct CopyResult: Sendable {
    public var size: UInt64
    /// Bytes that held data (read, and written unless checksumming).
    public var dataBytes: UInt64
    /// Bytes that read as zeros: skipped holes and zero blocks found in read data.
    public var zeroBytes: UInt64
    public var digest: DiskDigest?
    public var seconds: Double
}

/// The copy engine every ferry operation runs on: local copies, checksums,
/// conversions, and (through endpoints) network transfers.
///
/// Several worker threads take requests from a `CopyPlanner` in disk order and finish
/// them out of order: read, find zero blocks (64 KiB, vectorised compare), hash
/// each block for the digest, write data runs with positional writes and turn zero
/// runs into efficient zeroing — or nothing, when the target is known to be zero.
/// Memory is bounded by `workers × requestSize`, whatever the disk size; with a read-ahead
/// (a remote source), by `(readAhead + workers) × requestSize`.
public enum CopyEngine {
    /// Copies `source` to `target` (or only reads and hashes it when `target` is nil),
    /// then flushes the target. Throws the first error any worker met.
    public static func run(
        source: any BlockDevice, target: (any BlockDevice)?, options: CopyOptions = CopyOptions(),
        counters: CopyCounters = CopyCounters(), cancellation: Cancellation = Cancellation()
    ) throws -> CopyResult {
        let started = Date()
        if let target, target.size < source.size {
            throw DiskError(
                .tooSmall, target.name, operation: "copy",
                "the target holds \(target.size) bytes but the source has \(source.size)")
        }
        let sequential = !source.isRandomAccess || !(target?.isRandomAccess ?? true)
        let planner = CopyPlanner(source: source, requestSize: options.requestSize, useExtents: options.useExtents)
        let digest = options.computeDigest ? DigestBuilder(size: source.size, leaf: options.leaf) : nil
        let job = CopyJob(
            source: source, target: target, planner: planner, digest: digest, counters: counters,
            cancellation: cancellation, targetIsZero: options.targetIsZero, requestSize: Int(planner.requestSize))

        let workerCount = sequential ? 1 : max(1, options.workers)
        // Stream ends need requests in disk order, which reads finishing out of order would break.
        let readAhead = sequential ? 0 : max(0, options.readAhead ?? (source.capabilities.contains(.remote) ? CopyOptions.remoteReadAhead : 0))
        let group = DispatchGroup()
        func start(_ body: @escaping @Sendable () -> Void) {
            group.enter()
            let thread = Thread {
                body()
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        if readAhead > 0 {
            let ahead = CopyReadAhead(job: job, readers: readAhead, workers: workerCount)
            for _ in 0..<readAhead { start { ahead.read() } }
            for _ in 0..<workerCount { start { ahead.work() } }
        } else {
            for _ in 0..<workerCount { start { job.work() } }
        }
        group.wait()

        if let error = job.firstError { throw error }
        if cancellation.isCancelled {
            throw DiskError(.cancelled, target?.name ?? source.name, operation: "copy", "interrupted")
        }
        // An in-place target holds its first block back (`FirstBlockHold`); `TargetCommit` writes it.
        try target?.flush()
        let result = CopyResult(
            size: source.size, dataBytes: counters.data.load(ordering: .relaxed),
            zeroBytes: counters.zero.load(ordering: .relaxed), digest: try digest?.finalize(),
            seconds: Date().timeIntervalSince(started))
        return result
    }
}

/// The state the workers of one copy share.
final class CopyJob: Sendable {
    let source: any BlockDevice
    let target: (any BlockDevice)?
    let planner: CopyPlanner
    let digest: DigestBuilder?
    let counters: CopyCounters
    let cancellation: Cancellation
    let targetIsZero: Bool
    let requestSize: Int
    private let failure = Mutex<(any Error)?>(nil)

    init(
        source: any BlockDevice, target: (any BlockDevice)?, planner: CopyPlanner, digest: DigestBuilder?,
        counters: CopyCounters, cancellation: Cancellation, targetIsZero: Bool, requestSize: Int
    ) {
        self.source = source
        self.target = target
        self.planner = planner
        self.digest = digest
        self.counters = counters
        self.cancellation = cancellation
        self.targetIsZero = targetIsZero
        self.requestSize = requestSize
    }

    var firstError: (any Error)? { failure.withLock { $0 } }

    /// True once a worker failed or the copy was cancelled: the others stop taking requests.
    var stopping: Bool { firstError != nil || cancellation.isCancelled }

    func fail(_ error: any Error) {
        failure.withLock { if $0 == nil { $0 = error } }
    }

    func work() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: requestSize, alignment: 4096)
        defer { buffer.deallocate() }
        do {
            while !stopping, let request = try planner.next() {
                switch request.kind {
                case .zero: try zero(request)
                case .data:
                    let data = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(request.length)])
                    try read(request, into: data)
                    try store(request, data)
                }
            }
        } catch {
            fail(error)
        }
    }

    func zero(_ request: CopyRequest) throws {
        if let target, !targetIsZero {
            try counters.stages.measure(.targetWrite) {
                try target.writeZeros(at: request.offset, length: request.length, mayDiscard: true)
            }
        }
        digest?.addZeros(offset: request.offset, length: request.length)
        counters.add(zero: request.length)
    }

    /// Reads a data request into `data` (its length).
    func read(_ request: CopyRequest, into data: UnsafeMutableRawBufferPointer) throws {
        try counters.stages.measure(.sourceRead) { try source.read(into: data, at: request.offset) }
    }

    /// Finds the zero blocks of a data request read into `data`, hashes it, writes it.
    func store(_ request: CopyRequest, _ data: UnsafeMutableRawBufferPointer) throws {
        let length = data.count
        let started = DispatchTime.now().uptimeNanoseconds
        var writing = 0.0

        let block = DiskDigest.blockSize
        let blockCount = (length + block - 1) / block
        var hashes: [BlockHash] = []
        if digest != nil { hashes.reserveCapacity(blockCount) }
        var dataBytes: UInt64 = 0
        // Runs of same-kind blocks, written as one call each.
        var runStart = 0
        var runIsZero: Bool? = nil
        for i in 0..<blockCount {
            let start = i * block
            let end = min(start + block, length)
            let bytes = UnsafeRawBufferPointer(rebasing: data[start..<end])
            let isZero = ferry_is_zero(bytes.baseAddress, bytes.count) == 1
            if let leaf = digest?.leaf {
                hashes.append(isZero ? leaf.zeros(count: bytes.count) : leaf.hash(bytes))
            }
            if !isZero { dataBytes += UInt64(bytes.count) }
            if runIsZero != isZero {
                if let runIsZero { writing += try flushRun(data, runStart, start, zero: runIsZero, at: request.offset) }
                runIsZero = isZero
                runStart = start
            }
        }
        if let runIsZero { writing += try flushRun(data, runStart, length, zero: runIsZero, at: request.offset) }
        digest?.add(.hashes(hashes), at: request.offset / UInt64(block))
        // Zero detection and hashing: the request's time that was neither read nor write.
        counters.stages.add(.cpu, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 - writing)
        counters.add(data: dataBytes, zero: UInt64(length) - dataBytes)
    }

    /// Writes bytes `[start, end)` of the request buffer, or zeroes them on the target;
    /// returns the seconds spent writing.
    private func flushRun(
        _ data: UnsafeMutableRawBufferPointer, _ start: Int, _ end: Int, zero: Bool, at base: UInt64
    ) throws -> Double {
        guard let target, end > start else { return 0 }
        let offset = base + UInt64(start)
        let began = DispatchTime.now().uptimeNanoseconds
        if zero {
            if !targetIsZero { try target.writeZeros(at: offset, length: UInt64(end - start), mayDiscard: true) }
        } else {
            try target.write(UnsafeRawBufferPointer(rebasing: data[start..<end]), at: offset)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9
        counters.stages.add(.targetWrite, seconds)
        return seconds
    }
}
