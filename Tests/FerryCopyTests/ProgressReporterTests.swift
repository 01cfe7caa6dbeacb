import Dispatch
import FerryCopy
import Testing

@Suite struct ProgressReporterTests {
    /// `stop()` ends the reporter's wait between samples: a finished `ferry send` or
    /// `receive --progress json` used to sit out the rest of its one-second interval (a
    /// quarter second on a terminal) before it exited, on every run. Here the interval is an
    /// hour; the old reporter would still be asleep when the generous bound below runs out.
    @Test func stopDoesNotWaitOutTheInterval() {
        let reporter = ProgressReporter(mode: .json, phase: "test", total: 1, counters: CopyCounters(), interval: 3600)
        reporter.start()
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            reporter.stop()
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 60) == .success, "stop() waited for the reporter's hour-long interval")
    }
}
