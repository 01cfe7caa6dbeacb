import Foundation

/// Learns a link's rate, in wire bytes per second, from the sender's workers: each
/// reports the bytes it put on the socket, how long it worked preparing them and how
/// long it then waited for the socket. In a window where workers mostly waited, the
/// bytes that went through per second *are* the link's rate.
///
/// The estimate is a property of the link, not of what the sender chose: compressing
/// stops the waiting and sends fewer bytes, and such a window leaves the estimate alone
/// (forgetting it made the old threshold policy flap between zstd and lz4). A faster
/// rate seen without waiting raises it (a lower bound); a lower one counts from the
/// second saturated window running (the window in which the sender switched to
/// compressing averages waiting and sending less); after `relaxAfter` seconds without
/// waiting it grows slowly (links get faster; if this one did not, the next window that
/// waits says so). `--limit`, when given, is the starting point and the ceiling.
struct LinkRateEstimator: Sendable {
    struct Tuning: Sendable {
        /// A link-rate window lasts at least this long and holds at least `windowReports`.
        var windowSeconds = 0.25
        var firstWindowSeconds = 0.1
        var windowReports = 4
        /// Share of worker time spent waiting on the socket above which the link is saturated.
        var saturatedShare = 0.5
        /// ... and at least this share of the reports waited longer than they worked.
        var saturatedReports = 0.75
        /// Below this share the workers are "not waiting"; after `relaxAfter` seconds of
        /// that, the learned rate grows, doubling every `relaxDoubling` seconds.
        var idleShare = 0.25
        var relaxAfter = 5.0
        var relaxDoubling = 30.0
        /// Weight of a saturated window's rate when it is below the estimate.
        var rateWeight = 0.6
    }

    let limit: Double?
    let tuning: Tuning
    /// Wire bytes/s; nil until learned (or given by `limit`).
    private(set) var rate: Double?

    private var windowStart: Double?
    private var windowWait = 0.0
    private var windowWork = 0.0
    private var windowWire = 0.0
    private var windowReports = 0
    /// Reports in the window that waited longer than they worked.
    private var windowWaited = 0
    /// Start of the current run of windows without waiting.
    private var idleSince: Double?
    private var wasSaturated = false

    init(limit: Double?, tuning: Tuning = Tuning()) {
        self.limit = limit.map { max(1, $0) }
        self.tuning = tuning
        rate = self.limit
    }

    /// The pipeline started at `now` (the first window opens).
    mutating func start(at now: Double) {
        if windowStart == nil { windowStart = now }
    }

    /// A worker finished a request at `now`: it spent `work` seconds preparing it, then
    /// `wait` seconds until its `wireBytes` reached the socket.
    mutating func record(wireBytes: Int, work: Double, wait: Double, now: Double) {
        let start = windowStart ?? now
        windowStart = start
        windowWire += Double(max(0, wireBytes))
        windowWork += max(0, work)
        windowWait += max(0, wait)
        windowReports += 1
        if wait > work { windowWaited += 1 }
        let span = now - start
        // Short windows until the link is known: every window at the wrong choice costs.
        let length = rate == nil ? tuning.firstWindowSeconds : tuning.windowSeconds
        guard span >= length, windowReports >= tuning.windowReports else { return }
        let busy = windowWait + windowWork
        let share = busy > 0 ? windowWait / busy : 0
        let observed = windowWire / span
        // Saturated: most of the time, and most workers, waited on the socket (a window
        // straddling a switch to compressing averages waiting and sending less).
        let saturated =
            share >= tuning.saturatedShare && Double(windowWaited) >= tuning.saturatedReports * Double(windowReports)
        defer { wasSaturated = saturated }
        if saturated {
            // The link was the bottleneck: what went through is its rate. A lower rate
            // counts only in the second saturated window running.
            if let r = rate, observed < r {
                if wasSaturated { rate = r * (1 - tuning.rateWeight) + observed * tuning.rateWeight }
            } else {
                rate = observed
            }
        } else if let r = rate {
            // Not saturated: what went through is only a lower bound; after a long
            // time without waiting, assume the link may have become faster.
            var grown = max(r, observed)
            if let idle = idleSince, now - idle >= tuning.relaxAfter {
                grown *= pow(2, span / tuning.relaxDoubling)
            }
            rate = grown
        }
        idleSince = share < tuning.idleShare ? (idleSince ?? start) : nil
        if let cap = limit, let r = rate { rate = min(cap, r) }
        windowStart = now
        windowWire = 0
        windowWork = 0
        windowWait = 0
        windowReports = 0
        windowWaited = 0
    }
}
