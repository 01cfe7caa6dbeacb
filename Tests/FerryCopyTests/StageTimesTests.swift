@testable import FerryCopy
import Testing

@Suite struct StageTimesTests {
    @Test func busiestStageOfTheIntervalIsTheBottleneck() {
        let times = StageTimes()
        let tracker = BottleneckTracker(times)
        #expect(tracker.current(overall: false) == nil)  // nothing measured yet
        times.add(.sourceRead, 0.5)
        times.add(.cpu, 0.2)
        #expect(tracker.current(overall: false) == .sourceRead)
        // The next interval is network-bound, though reading leads over the whole run.
        times.add(.network, 0.3)
        times.add(.cpu, 0.1)
        #expect(tracker.current(overall: false) == .network)
        #expect(tracker.current(overall: true) == .sourceRead)
        // An interval with (almost) nothing measured keeps the last verdict.
        #expect(tracker.current(overall: false) == .sourceRead)
        times.add(.targetWrite, 2)
        #expect(tracker.current(overall: false) == .targetWrite)
    }

    /// A small, quick copy still names its limiting stage in the final sample.
    @Test func wholeRunVerdictNeedsNoMinimum() {
        let times = StageTimes()
        let tracker = BottleneckTracker(times)
        times.add(.targetWrite, 0.0002)
        times.add(.cpu, 0.0001)
        #expect(BottleneckTracker(times).current(overall: false) == nil)
        #expect(tracker.current(overall: true) == .targetWrite)
    }

    @Test func ttyLineShowsCompressionRatioAndBottleneck() {
        var sample = ProgressSample(
            phase: "send sda", bytes: 3 << 30, total: 4 << 30, dataBytes: 2 << 30, zeroBytes: 1 << 30, rate: 100e6,
            elapsed: 30, eta: 10)
        #expect(!ProgressReporter.ttyLine(sample).contains("wire"))
        sample.wireBytes = 512 << 20
        sample.bottleneck = Stage.network.rawValue
        let line = ProgressReporter.ttyLine(sample)
        #expect(line.contains("wire 512 MiB (4.0:1)"), "\(line)")
        #expect(line.hasSuffix("limited by network"), "\(line)")
    }

    @Test func ttyLineShowsComparedAndChangedOfASyncPass() {
        var sample = ProgressSample(
            phase: "send sda", bytes: 4 << 30, total: 4 << 30, dataBytes: 40 << 20, zeroBytes: 0, rate: 1e9,
            elapsed: 4, eta: nil)
        #expect(!ProgressReporter.ttyLine(sample).contains("compared"))
        sample.comparedBytes = 4 << 30
        sample.changedBytes = 40 << 20
        let line = ProgressReporter.ttyLine(sample)
        #expect(line.contains("compared 4.0 GiB  changed 40.0 MiB"), "\(line)")
    }

    @Test func measureAddsToItsStage() throws {
        let times = StageTimes()
        let value = times.measure(.cpu) { (0..<200_000).reduce(0, &+) }
        #expect(value > 0)
        let snapshot = times.snapshot()
        #expect(snapshot[Stage.allCases.firstIndex(of: .cpu) ?? 0] > 0)
        #expect(snapshot[Stage.allCases.firstIndex(of: .network) ?? 0] == 0)
    }
}
