import CFerryShims
public import FerryDisk
import Foundation
import Synchronization

/// Reads ahead of a copy, while the copy waits on something else (the link), for requests
/// that read as zeros, so that the copy need not read them when it gets there.
///
/// A source that cannot say where its data is (a block device: a guest's disk on a rescue
/// system) must be read whole, zeros included. A sender whose link is the bottleneck reads
/// only as far ahead as its request permits, so the disk sits idle while data crosses the
/// link, and then the link sits idle while the never-written rest of the disk is read: on
/// the seed link's 2 GiB disk (512 MiB of data) that tail was a fifth of the run. The scout
/// uses the idle disk: after each `kick` (the sender gives one when a worker waited on the
/// socket longer than it took to prepare its request) it scans further ahead of the copy for
/// `busyWindow` seconds, and remembers the all-zero grains. `CopyPlanner` hands a run of them out as one zero
/// request, which is sent as a zero extent without being read again.
///
/// It costs one extra read of the data it passes over (from the page cache when the copy
/// catches up soon), and only while the copy is waiting anyway: when reading is the
/// bottleneck the workers do not wait on the socket and nobody kicks. Memory is one grain
/// buffer while a step runs and at most `maxRuns` remembered ranges, whatever the disk size.
///
/// What the copy sends for a scouted range is what the scout read, hashed as zeros: the
/// same point-in-time read as any other request (a running guest's disk is at best
/// crash-consistent, scouted or not).
public final class ZeroScout: Sendable {
    /// The scan unit, aligned on multiples of itself: the planner's request size.
    public let grain: UInt64
    /// How far ahead of the copy a scan starts: the requests just ahead are the copy's own.
    public let lead: UInt64
    /// Grains scanned per `step`.
    public let stepGrains: Int
    /// How long after a kick the scout goes on scanning: kicks come every few tens of
    /// milliseconds while the link is the bottleneck, so the scout runs while they do.
    public let busyWindow: Duration
    /// At most this many separate zero ranges are remembered ahead of the copy; the scout
    /// waits for the copy to consume some before it scans further.
    public let maxRuns: Int
    private let source: any BlockDevice
    private let queue = DispatchQueue(label: "ferry.zero-scout", qos: .utility)
    private let state = Mutex(State())

    private struct State {
        /// The copy has taken every request below this offset.
        var copied: UInt64 = 0
        /// The next offset to scan (a multiple of `grain`, or the disk's end).
        var frontier: UInt64 = 0
        /// Known all-zero ranges at or after `copied`, sorted, merged; the live ones start at `head`.
        var zeros: [Range<UInt64>] = []
        var head = 0
        var scheduled = false
        var stopped = false
        var busyUntil = ContinuousClock.now
        var scanned: UInt64 = 0
        var found: UInt64 = 0
        var skipped: UInt64 = 0

        var liveRuns: Int { zeros.count - head }

        mutating func dropBehind(_ offset: UInt64) {
            while head < zeros.count, zeros[head].upperBound <= offset { head += 1 }
            if head > 1024, head * 2 > zeros.count {
                zeros.removeFirst(head)
                head = 0
            }
        }
    }

    /// What the scout did: bytes scanned, bytes found zero, and found bytes the copy then
    /// took as zero requests without reading them.
    public struct Statistics: Sendable, Equatable {
        public var scanned: UInt64
        public var found: UInt64
        public var skipped: UInt64
    }

    public init(
        source: any BlockDevice, grain: UInt64, lead: UInt64? = nil, stepGrains: Int = 8, maxRuns: Int = 1 << 16,
        busyWindow: Duration = .milliseconds(100)
    ) {
        self.source = source
        self.busyWindow = busyWindow
        let block = UInt64(DiskDigest.blockSize)
        self.grain = max(block, grain / block * block)
        self.lead = lead ?? 16 * self.grain
        self.stepGrains = max(1, stepGrains)
        self.maxRuns = max(1, maxRuns)
    }

    /// Whether scouting can pay for `source`: it must be read whole (no extents say where the
    /// data is), reads at any offset, and reading it twice costs the local disk, not a link
    /// (an NBD export or an ESXi host is `.remote`).
    public static func worthwhile(for source: any BlockDevice) -> Bool {
        let caps = source.capabilities
        return caps.contains(.randomAccess) && !caps.contains(.extents) && !caps.contains(.remote)
            && source.size > 64 * UInt64(DiskDigest.blockSize)
    }

    /// `FERRY_ZERO_SCOUT=off` turns scouting off, for benchmarks that measure what it gains.
    public static let enabled = ProcessInfo.processInfo.environment["FERRY_ZERO_SCOUT"] != "off"

    public var statistics: Statistics {
        state.withLock { Statistics(scanned: $0.scanned, found: $0.found, skipped: $0.skipped) }
    }

    /// The copy is waiting on something else: scan for the next `busyWindow` (unless the
    /// scout stopped or the disk is scanned).
    public func kick() {
        let schedule = state.withLock { s -> Bool in
            s.busyUntil = .now + busyWindow
            guard !s.scheduled, !s.stopped, s.frontier < source.size else { return false }
            s.scheduled = true
            return true
        }
        if schedule { queue.async { self.scanWhileBusy() } }
    }

    private func scanWhileBusy() {
        defer { state.withLock { $0.scheduled = false } }
        while state.withLock({ ContinuousClock.now < $0.busyUntil }), step() {}
    }

    /// Scans up to `stepGrains` grains ahead of the copy; false when it can scan no further
    /// for now (stopped, scanned to the end, or `maxRuns` ranges waiting). Runs on the
    /// scout's queue; tests call it directly.
    @discardableResult
    public func step() -> Bool {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(grain), alignment: 4096)
        defer { buffer.deallocate() }
        for _ in 0..<stepGrains {
            let next = state.withLock { s -> Range<UInt64>? in
                guard !s.stopped, s.liveRuns < maxRuns else { return nil }
                let ahead = (s.copied + lead + grain - 1) / grain * grain
                let start = max(s.frontier, ahead)
                guard start < source.size else { return nil }
                return start..<min(source.size, start + grain)
            }
            guard let range = next else { return false }
            let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(range.count)])
            do {
                try source.read(into: bytes, at: range.lowerBound)
            } catch {
                // The copy reads this range itself and reports what is wrong with it.
                state.withLock { $0.stopped = true }
                return false
            }
            let zero = ferry_is_zero(UnsafeRawPointer(bytes.baseAddress), bytes.count) == 1
            state.withLock { s in
                s.frontier = range.upperBound
                s.scanned += UInt64(range.count)
                guard zero, range.lowerBound >= s.copied else { return }
                s.found += UInt64(range.count)
                if s.head < s.zeros.count, s.zeros[s.zeros.count - 1].upperBound == range.lowerBound {
                    s.zeros[s.zeros.count - 1] = s.zeros[s.zeros.count - 1].lowerBound..<range.upperBound
                } else {
                    s.zeros.append(range)
                }
            }
        }
        return true
    }

    /// The end of the known-zero range holding `offset`, or nil when none does.
    func zeroEnd(from offset: UInt64) -> UInt64? {
        state.withLock { s in
            s.dropBehind(offset)
            guard s.head < s.zeros.count, s.zeros[s.head].contains(offset) else { return nil }
            return s.zeros[s.head].upperBound
        }
    }

    /// The copy took every request below `offset`; `skipped` of them were scouted zeros.
    func copied(upTo offset: UInt64, skipped: UInt64 = 0) {
        state.withLock { s in
            s.copied = max(s.copied, offset)
            s.skipped += skipped
            s.dropBehind(offset)
        }
    }

    /// Stops scanning and waits for a step in progress, so nothing reads the source after
    /// this returns.
    public func stop() async {
        state.withLock { $0.stopped = true }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in queue.async { done.resume() } }
    }

    /// `stop()` for a caller on its own thread (the pipe sender): blocks until a step in progress ends.
    public func stopWaiting() {
        state.withLock { $0.stopped = true }
        queue.sync {}
    }
}
