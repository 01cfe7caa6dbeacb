import Foundation
public import Synchronization

/// Counters the copy engine bumps as work completes; read by progress reporters.
public final class CopyCounters: Sendable {
    /// Bytes of the disk finished (written, zeroed, or skipped as known zero).
    public let done = Atomic<UInt64>(0)
    /// Of those, bytes that held data.
    public let data = Atomic<UInt64>(0)
    /// Of those, bytes that read as zeros (holes skipped or zero blocks detected).
    public let zero = Atomic<UInt64>(0)
    /// Bytes the data took on the wire after compression (network transfers only; 0 otherwise).
    public let wire = Atomic<UInt64>(0)
    /// Delta sync (`--sync`): bytes of the disk compared by hash with the target's copy, and
    /// of those the bytes whose blocks differed (sent). 0 outside a sync pass.
    public let compared = Atomic<UInt64>(0)
    public let changed = Atomic<UInt64>(0)
    /// Where the time goes, for the progress line's bottleneck (shareable: the disks of
    /// a session feed one).
    public let stages: StageTimes

    public init(stages: StageTimes = StageTimes()) { self.stages = stages }

    /// Sets the byte counts (all but `done`) to the sums of `parts`': a session's progress
    /// is the sum of its disks'.
    public func store(sumOf parts: [CopyCounters]) {
        func sum(_ counter: (CopyCounters) -> UInt64) -> UInt64 { parts.reduce(0) { $0 + counter($1) } }
        data.store(sum { $0.data.load(ordering: .relaxed) }, ordering: .relaxed)
        zero.store(sum { $0.zero.load(ordering: .relaxed) }, ordering: .relaxed)
        wire.store(sum { $0.wire.load(ordering: .relaxed) }, ordering: .relaxed)
        compared.store(sum { $0.compared.load(ordering: .relaxed) }, ordering: .relaxed)
        changed.store(sum { $0.changed.load(ordering: .relaxed) }, ordering: .relaxed)
    }

    /// A sync pass compared `compared` bytes; `changed` of them differed.
    public func add(compared: UInt64, changed: UInt64) {
        self.compared.add(compared, ordering: .relaxed)
        if changed > 0 { self.changed.add(changed, ordering: .relaxed) }
    }

    public func add(data: UInt64 = 0, zero: UInt64 = 0) {
        if data > 0 { self.data.add(data, ordering: .relaxed) }
        if zero > 0 { self.zero.add(zero, ordering: .relaxed) }
        done.add(data + zero, ordering: .relaxed)
    }
}

/// How progress is shown.
public enum ProgressMode: String, Sendable, CaseIterable {
    /// Nothing.
    case none
    /// A live line on a terminal, redrawn in place.
    case tty
    /// JSON lines for orchestration: `{"phase":…,"bytes":…,"total":…,"rate":…,"elapsed":…}`.
    case json
    /// `tty` when standard error is a terminal, otherwise nothing.
    case auto

    /// Resolves `auto` against the terminal.
    public var resolved: ProgressMode {
        guard self == .auto else { return self }
        return isatty(2) == 1 ? .tty : .none
    }
}

/// One sample of progress, as printed in JSON mode.
public struct ProgressSample: Sendable, Codable, Equatable {
    public var phase: String
    public var bytes: UInt64
    public var total: UInt64
    public var dataBytes: UInt64
    public var zeroBytes: UInt64
    /// Bytes per second over the last few seconds.
    public var rate: Double
    public var elapsed: Double
    public var eta: Double?
    /// Data bytes on the wire after compression (transfers): `dataBytes / wireBytes` is the ratio.
    public var wireBytes: UInt64?
    /// The stage that limits the speed now ("source read", "CPU", "network", "target write").
    public var bottleneck: String?
    /// A sync pass (`--sync`): bytes compared by hash with the target's copy, and how many of
    /// them had changed. Absent outside a sync pass.
    public var comparedBytes: UInt64?
    public var changedBytes: UInt64?
}

/// Prints progress on a background thread until stopped. Writes to standard error
/// so that standard output stays free for data (`ferry copy disk -`).
public final class ProgressReporter: Sendable {
    public let mode: ProgressMode
    public let phase: String
    public let total: UInt64
    public let counters: CopyCounters
    private let bottleneck: BottleneckTracker
    private let interval: Double
    private let stopped = Atomic<Bool>(false)
    /// Signalled by `stop()`: the reporter's wait between samples ends at once, so a
    /// finished transfer does not sit out the rest of an interval (a second in JSON mode)
    /// before it exits.
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let startDate = Date()

    public init(mode: ProgressMode, phase: String, total: UInt64, counters: CopyCounters, interval: Double? = nil) {
        self.mode = mode.resolved
        self.phase = phase
        self.total = total
        self.counters = counters
        bottleneck = BottleneckTracker(counters.stages)
        self.interval = interval ?? (mode.resolved == .json ? 1.0 : 0.25)
    }

    public func start() {
        guard mode != .none else { return }
        let thread = Thread { [self] in
            var history: [(Double, UInt64)] = []
            while !self.stopped.load(ordering: .relaxed) {
                self.emit(&history, final: false)
                _ = self.wake.wait(timeout: .now() + self.interval)
            }
            self.emit(&history, final: true)
            self.finished.signal()
        }
        thread.start()
    }

    /// Stops the reporter and prints a final sample.
    public func stop() {
        guard mode != .none else { return }
        stopped.store(true, ordering: .relaxed)
        wake.signal()
        finished.wait()
    }

    /// A sample now, with the rate over the window kept in `history`.
    func sample(_ history: inout [(Double, UInt64)], final: Bool = false) -> ProgressSample {
        let now = Date().timeIntervalSince(startDate)
        let done = counters.done.load(ordering: .relaxed)
        history.append((now, done))
        while let first = history.first, now - first.0 > 5, history.count > 2 { history.removeFirst() }
        var rate = 0.0
        if let first = history.first, now - first.0 > 0.05 {
            rate = Double(done - first.1) / (now - first.0)
        } else if now > 0 {
            rate = Double(done) / now
        }
        let eta: Double? = rate > 0 && total >= done ? Double(total - done) / rate : nil
        let wire = counters.wire.load(ordering: .relaxed)
        let compared = counters.compared.load(ordering: .relaxed)
        return ProgressSample(
            phase: phase, bytes: done, total: total, dataBytes: counters.data.load(ordering: .relaxed),
            zeroBytes: counters.zero.load(ordering: .relaxed), rate: rate, elapsed: now, eta: eta,
            wireBytes: wire > 0 ? wire : nil, bottleneck: bottleneck.current(overall: final)?.rawValue,
            comparedBytes: compared > 0 ? compared : nil,
            changedBytes: compared > 0 ? counters.changed.load(ordering: .relaxed) : nil)
    }

    private func emit(_ history: inout [(Double, UInt64)], final: Bool) {
        let s = sample(&history, final: final)
        switch mode {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            if let data = try? encoder.encode(s), var line = String(data: data, encoding: .utf8) {
                line += "\n"
                try? FileHandle.standardError.write(contentsOf: Data(line.utf8))
            }
        case .tty:
            var line = "\r\u{1B}[K" + Self.ttyLine(s)
            if final { line += "\n" }
            try? FileHandle.standardError.write(contentsOf: Data(line.utf8))
        case .none, .auto:
            break
        }
    }

    /// `  1.2 GiB / 2.0 GiB  60%  512 MiB/s  ETA 0:02  data 1.0 GiB  zero 0.2 GiB`
    public static func ttyLine(_ s: ProgressSample) -> String {
        let percent = s.total > 0 ? Int(Double(s.bytes) * 100 / Double(s.total)) : 100
        var line = "\(s.phase): \(ByteCount.format(s.bytes)) / \(ByteCount.format(s.total))  \(percent)%"
        line += "  \(ByteCount.format(UInt64(max(0, s.rate))))/s"
        if let eta = s.eta, s.bytes < s.total { line += "  ETA \(Self.duration(eta))" }
        if let compared = s.comparedBytes {
            line += "  compared \(ByteCount.format(compared))  changed \(ByteCount.format(s.changedBytes ?? 0))"
        }
        line += "  data \(ByteCount.format(s.dataBytes))  zero \(ByteCount.format(s.zeroBytes))"
        if let wire = s.wireBytes, wire > 0 {
            line += "  wire \(ByteCount.format(wire)) (\(String(format: "%.1f", Double(s.dataBytes) / Double(wire))):1)"
        }
        if let b = s.bottleneck { line += "  limited by \(b)" }
        return line
    }

    public static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let h = total / 3600, m = (total % 3600) / 60, sec = total % 60
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return h > 0 ? "\(h):\(two(m)):\(two(sec))" : "\(m):\(two(sec))"
    }
}

/// Human-readable byte counts in binary units.
public enum ByteCount {
    public static func format(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        return String(format: value >= 100 ? "%.0f %@" : "%.1f %@", value, units[unit])
    }
}
