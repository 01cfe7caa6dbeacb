import FerryProtocol
import NIOCore
import Testing

/// Several disks in one session: per-disk state in both machines, interleaved
/// extents, and a hostile peer's messages about the wrong disk.
@Suite struct MultiDiskReceiverMachineTests {
    let hello = Message.hello(Hello(capabilities: [], role: .sender))
    let sizes: [UInt64] = [200_000, 3 * 65536, 65536]
    let zeroDigest = [UInt8](repeating: 0, count: 32)

    func describe(_ i: UInt32) -> DiskDescription {
        DiskDescription(index: i, count: UInt32(sizes.count), size: sizes[Int(i)], sectorSize: 512, name: "d\(i)")
    }

    /// Hello answered, every disk described and opened.
    func running(open: Int? = nil) -> ReceiverStateMachine {
        var m = ReceiverStateMachine(diskCount: sizes.count, capabilities: [])
        _ = m.received(hello)
        for i in 0..<UInt32(open ?? sizes.count) {
            _ = m.received(.disk(describe(i)))
            _ = m.diskOpened(i, flags: 0)
        }
        return m
    }

    func zero(_ disk: UInt32, _ offset: UInt64, _ length: UInt64) -> Message {
        .zero(ZeroExtent(disk: disk, offset: offset, length: length))
    }

    func failure(_ action: ReceiverStateMachine.Action) -> ProtocolError.Code? {
        if case .fail(let e) = action { return e.code }
        return nil
    }

    @Test func interleavedDisksFinishEachInTurn() {
        var m = running()
        // Extents of the three disks, mixed; the same offsets on different disks do not overlap.
        #expect(m.received(zero(1, 0, 65536)) == .zero(ZeroExtent(disk: 1, offset: 0, length: 65536)))
        #expect(m.received(zero(0, 0, 65536)) == .zero(ZeroExtent(disk: 0, offset: 0, length: 65536)))
        #expect(m.received(zero(2, 0, 65536)) == .zero(ZeroExtent(disk: 2, offset: 0, length: 65536)))
        let finish2 = Finish(disk: 2, digest: zeroDigest)
        #expect(m.received(.finish(finish2)) == .finishDisk(finish2))
        // Disk 2 finishing does not hold up the others.
        #expect(m.received(zero(0, 65536, 200_000 - 65536)) == .zero(ZeroExtent(disk: 0, offset: 65536, length: 200_000 - 65536)))
        #expect(m.diskFinished(2) == .awaitNextDisk)
        #expect(m.received(zero(1, 65536, 2 * 65536)) == .zero(ZeroExtent(disk: 1, offset: 65536, length: 2 * 65536)))
        #expect(m.received(.finish(Finish(disk: 1, digest: zeroDigest))) == .finishDisk(Finish(disk: 1, digest: zeroDigest)))
        #expect(m.received(.finish(Finish(disk: 0, digest: zeroDigest))) == .finishDisk(Finish(disk: 0, digest: zeroDigest)))
        #expect(m.diskFinished(0) == .awaitNextDisk)
        #expect(!m.isDone)
        #expect(m.diskFinished(1) == .done)
        #expect(m.isDone)
    }
    @Test func extentForAnUndescribedDiskFails() {
        var m = running(open: 1)
        #expect(failure(m.received(zero(1, 0, 65536))) == .protocolViolation)
    }
    @Test func extentForADiskNotYetOpenedFails() {
        var m = running(open: 1)
        #expect(m.received(.disk(describe(1))) == .openDisk(describe(1)))
        #expect(failure(m.received(zero(1, 0, 65536))) == .protocolViolation)
    }
    @Test func extentForAFinishedDiskFails() {
        var m = running()
        _ = m.received(zero(2, 0, 65536))
        _ = m.received(.finish(Finish(disk: 2, digest: zeroDigest)))
        #expect(failure(m.received(zero(2, 0, 65536))) == .protocolViolation)
        var n = running()
        _ = n.received(zero(2, 0, 65536))
        _ = n.received(.finish(Finish(disk: 2, digest: zeroDigest)))
        _ = n.diskFinished(2)
        #expect(failure(n.received(.same(SameSegment(disk: 2, offset: 0, length: 65536, leaves: ByteBuffer(repeating: 0, count: 32))))) == .protocolViolation)
    }
    @Test func secondDescriptionOfADiskFails() {
        var m = running()
        #expect(failure(m.received(.disk(describe(1)))) == .protocolViolation)
        var n = running()
        var bigger = describe(1)
        bigger.size += 65536
        #expect(failure(n.received(.disk(bigger))) == .outOfRange)
    }
    @Test func diskIndexPastTheCountFails() {
        var m = running(open: 0)
        let evil = DiskDescription(index: 7, count: UInt32(sizes.count), size: 65536, sectorSize: 512, name: "x")
        #expect(failure(m.received(.disk(evil))) == .protocolViolation)
    }
    @Test func finishBeforeThatDiskIsCompleteFails() {
        var m = running()
        _ = m.received(zero(2, 0, 65536))  // disk 2 complete, disk 1 not
        _ = m.received(zero(1, 0, 65536))
        #expect(failure(m.received(.finish(Finish(disk: 1, digest: zeroDigest)))) == .verification)
    }
    @Test func secondFinishOfADiskFails() {
        var m = running()
        _ = m.received(zero(2, 0, 65536))
        _ = m.received(.finish(Finish(disk: 2, digest: zeroDigest)))
        #expect(failure(m.received(.finish(Finish(disk: 2, digest: zeroDigest)))) == .protocolViolation)
    }
    @Test func overlapIsPerDisk() {
        var m = running()
        _ = m.received(zero(0, 0, 131_072))
        #expect(failure(m.received(zero(1, 0, 131_072))) == nil)
        #expect(failure(m.received(zero(0, 65536, 65536))) == .outOfRange)
    }
    @Test func finishedHandlerCallsAreChecked() {
        var m = running()
        #expect(failure(m.diskFinished(1)) == .protocolViolation)
        var n = running()
        #expect(failure(n.diskOpened(0, flags: 0)) == .protocolViolation)
    }
}

@Suite struct MultiDiskSenderMachineTests {
    let hello = Message.hello(Hello(capabilities: [], role: .receiver))
    let ours = [UInt8](repeating: 7, count: 32)

    func running(_ count: Int = 3) -> SenderStateMachine {
        var m = SenderStateMachine(diskCount: count, capabilities: [])
        _ = m.start()
        _ = m.received(hello)
        return m
    }

    func failure(_ action: SenderStateMachine.Action) -> ProtocolError.Code? {
        if case .fail(let e) = action { return e.code }
        return nil
    }

    @Test func disksRunSideBySideAndTheLastResultEndsTheSession() {
        var m = running()
        #expect(m.received(.ready(DiskReady(index: 2))) == .startSending(2, targetIsZero: false))
        #expect(m.received(.ready(DiskReady(index: 0, flags: DiskReady.targetIsZero))) == .startSending(0, targetIsZero: true))
        #expect(m.received(.ready(DiskReady(index: 1, flags: DiskReady.resume))) == .ignoreForNow)
        let list = SegmentList(disk: 1, segmentSize: 1 << 20, isFinal: true, entries: [])
        #expect(m.received(.segments(list)) == .resumeSegments(list, start: true))
        for i in [UInt32(1), 0, 2] {
            #expect(m.allSent(disk: i, digest: ours) == .send(.finish(Finish(disk: i, digest: ours))))
        }
        #expect(m.received(.ack(Ack(disk: 0, written: 9, durable: 9))) == .progress(Ack(disk: 0, written: 9, durable: 9)))
        #expect(m.received(.result(DiskResult(disk: 0, status: .verified, digest: ours))) == .diskVerified(0))
        #expect(m.received(.result(DiskResult(disk: 2, status: .verified, digest: ours))) == .diskVerified(2))
        #expect(m.received(.result(DiskResult(disk: 1, status: .verified, digest: ours))) == .done)
    }
    @Test func secondReadyForADiskFails() {
        var m = running()
        _ = m.received(.ready(DiskReady(index: 1)))
        #expect(failure(m.received(.ready(DiskReady(index: 1)))) == .protocolViolation)
    }
    @Test func readyForADiskPastTheCountFails() {
        var m = running()
        #expect(failure(m.received(.ready(DiskReady(index: 3)))) == .protocolViolation)
    }
    @Test func resultBeforeFinishFails() {
        var m = running()
        _ = m.received(.ready(DiskReady(index: 0)))
        #expect(failure(m.received(.result(DiskResult(disk: 0, status: .verified, digest: ours)))) == .protocolViolation)
    }
    @Test func segmentsForADiskNotResumingFail() {
        var m = running()
        _ = m.received(.ready(DiskReady(index: 0)))
        let list = SegmentList(disk: 0, segmentSize: 1 << 20, isFinal: true, entries: [])
        #expect(failure(m.received(.segments(list))) == .protocolViolation)
    }
    @Test func ackForAVerifiedDiskFails() {
        var m = running()
        _ = m.received(.ready(DiskReady(index: 0)))
        _ = m.allSent(disk: 0, digest: ours)
        _ = m.received(.result(DiskResult(disk: 0, status: .verified, digest: ours)))
        #expect(failure(m.received(.ack(Ack(disk: 0, written: 1, durable: 1)))) == .protocolViolation)
    }
    @Test func allSentForADiskNotBeingSentFails() {
        var m = running()
        #expect(failure(m.allSent(disk: 1, digest: ours)) == .protocolViolation)
    }
    @Test func mismatchOnOneDiskFailsTheSession() {
        var m = running(2)
        _ = m.received(.ready(DiskReady(index: 0)))
        _ = m.allSent(disk: 0, digest: ours)
        #expect(failure(m.received(.result(DiskResult(disk: 0, status: .verified, digest: Array(repeating: 8, count: 32))))) == .verification)
    }
}
