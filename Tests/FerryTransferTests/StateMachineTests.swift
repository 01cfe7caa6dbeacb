import FerryProtocol
import NIOCore
import Testing

@Suite struct ReceiverStateMachineTests {
    let senderHello = Message.hello(Hello(capabilities: [], role: .sender))
    let disk0 = DiskDescription(index: 0, count: 1, size: 200_000, sectorSize: 512, name: "d")

    func receiving() -> ReceiverStateMachine {
        var m = ReceiverStateMachine(diskCount: 1, capabilities: [])
        _ = m.received(senderHello)
        _ = m.received(.disk(disk0))
        _ = m.diskOpened(0, flags: 0)
        return m
    }

    func data(_ offset: UInt64, _ length: Int) -> Message {
        .data(DataExtent(
            disk: 0, offset: offset, hashes: ByteBuffer(repeating: 0, count: (length + 65535) / 65536 * 32),
            data: ByteBuffer(repeating: 1, count: length)))
    }

    @Test func pingIsIgnoredInAnyState() {
        var fresh = ReceiverStateMachine(diskCount: 1, capabilities: [])
        #expect(fresh.received(.ping) == .awaitNextDisk)
        var m = receiving()
        #expect(m.received(.ping) == .awaitNextDisk)
        guard case .write = m.received(data(0, 65536)) else { Issue.record(); return }
    }
    @Test func helloIsAnswered() {
        var m = ReceiverStateMachine(diskCount: 1, capabilities: [])
        #expect(m.received(senderHello) == .reply(.hello(Hello(capabilities: [], role: .receiver))))
    }
    @Test func wrongVersionFails() {
        var m = ReceiverStateMachine(diskCount: 1, capabilities: [])
        guard case .fail(let e) = m.received(.hello(Hello(version: 9, capabilities: [], role: .sender))) else { Issue.record(); return }
        #expect(e.code == .version)
    }
    @Test func diskBeforeHelloFails() {
        var m = ReceiverStateMachine(diskCount: 1, capabilities: [])
        #expect(m.received(.disk(disk0)) == .fail(ProtocolError(.protocolViolation, "unexpected disk message while waiting for hello")))
    }
    @Test func diskIsOpened() {
        var m = ReceiverStateMachine(diskCount: 1, capabilities: [])
        _ = m.received(senderHello)
        #expect(m.received(.disk(disk0)) == .openDisk(disk0))
        #expect(m.diskOpened(0, flags: 1) == .reply(.ready(DiskReady(index: 0, flags: 1))))
    }
    @Test func diskCountMismatchFails() {
        var m = ReceiverStateMachine(diskCount: 2, capabilities: [])
        _ = m.received(senderHello)
        guard case .fail(let e) = m.received(.disk(disk0)) else { Issue.record(); return }
        #expect(e.code == .mismatch)
    }
    @Test func inRangeDataIsWritten() {
        var m = receiving()
        guard case .write = m.received(data(0, 65536)) else { Issue.record(); return }
    }
    @Test func dataPastTheEndFails() {
        var m = receiving()
        guard case .fail(let e) = m.received(data(196_608, 65536)) else { Issue.record(); return }
        #expect(e.code == .outOfRange)
    }
    @Test func lastShortBlockIsAccepted() {
        var m = receiving()
        guard case .write = m.received(data(196_608, 200_000 - 196_608)) else { Issue.record(); return }
    }
    @Test func extentEndingMidBlockFails() {
        var m = receiving()
        guard case .fail(let e) = m.received(data(0, 1000)) else { Issue.record(); return }
        #expect(e.code == .outOfRange)
    }
    @Test func overlappingExtentFails() {
        var m = receiving()
        _ = m.received(data(0, 131_072))
        guard case .fail(let e) = m.received(.zero(ZeroExtent(disk: 0, offset: 65536, length: 65536))) else { Issue.record(); return }
        #expect(e.code == .outOfRange)
    }
    @Test func hugeZeroRunOverflowFails() {
        var m = receiving()
        guard case .fail(let e) = m.received(.zero(ZeroExtent(disk: 0, offset: 65536, length: .max - 10))) else { Issue.record(); return }
        #expect(e.code == .outOfRange)
    }
    @Test func wrongDiskIndexFails() {
        var m = receiving()
        guard case .fail = m.received(.zero(ZeroExtent(disk: 3, offset: 0, length: 65536))) else { Issue.record(); return }
    }
    @Test func sizeThatChangesFails() {
        var m = receiving()
        var other = disk0
        other.size += 65536
        guard case .fail(let e) = m.received(.disk(other)) else { Issue.record(); return }
        #expect(e.code == .outOfRange)
    }
    @Test func finishBeforeEverythingArrivedFails() {
        var m = receiving()
        _ = m.received(data(0, 65536))
        guard case .fail(let e) = m.received(.finish(Finish(disk: 0, digest: Array(repeating: 0, count: 32)))) else { Issue.record(); return }
        #expect(e.code == .verification)
    }
    @Test func completeDiskFinishes() {
        var m = receiving()
        _ = m.received(.zero(ZeroExtent(disk: 0, offset: 0, length: 196_608)))
        _ = m.received(data(196_608, 200_000 - 196_608))
        let finish = Finish(disk: 0, digest: Array(repeating: 0, count: 32))
        #expect(m.received(.finish(finish)) == .finishDisk(finish))
        #expect(m.diskFinished(0) == .done)
        #expect(m.isDone)
    }
    @Test func unchangedSegmentIsRangeChecked() {
        var m = receiving()
        let inside = SameSegment(disk: 0, offset: 0, length: 131_072, leaves: ByteBuffer(repeating: 0, count: 64))
        #expect(m.received(.same(inside)) == .same(inside))
        let outside = SameSegment(disk: 0, offset: 196_608, length: 131_072, leaves: ByteBuffer(repeating: 0, count: 64))
        guard case .fail(let e) = m.received(.same(outside)) else { Issue.record(); return }
        #expect(e.code == .outOfRange)
    }
    @Test func peerErrorIsReported() {
        var m = receiving()
        #expect(m.received(.error(ErrorMessage(ProtocolError(.io, "x")))) == .peerFailed(ProtocolError(.io, "x")))
    }
    @Test func compressedWithoutCapabilityFails() {
        var m = receiving()
        let c = CompressedExtent(disk: 0, offset: 0, length: 65536, codec: .zstd, hashes: ByteBuffer(repeating: 0, count: 32), compressed: ByteBuffer(repeating: 0, count: 4))
        guard case .fail = m.received(.compressed(c)) else { Issue.record(); return }
    }
}

@Suite struct SenderStateMachineTests {
    let receiverHello = Message.hello(Hello(capabilities: [.zstd], role: .receiver))

    @Test func senderIgnoresPing() {
        var m = SenderStateMachine(diskCount: 1, capabilities: [])
        _ = m.start()
        #expect(m.received(.ping) == .ignoreForNow)
        #expect(m.received(receiverHello) == .describeAll)
    }
    @Test func startSendsHello() {
        var m = SenderStateMachine(diskCount: 1, capabilities: [])
        #expect(m.start() == .send(.hello(Hello(capabilities: [], role: .sender))))
    }
    @Test func helloLeadsToFirstDisk() {
        var m = SenderStateMachine(diskCount: 1, capabilities: [])
        _ = m.start()
        #expect(m.received(receiverHello) == .describeAll)
        #expect(m.peerCapabilities == [.zstd])
    }
    @Test func readyStartsSending() {
        var m = SenderStateMachine(diskCount: 1, capabilities: [])
        _ = m.start()
        _ = m.received(receiverHello)
        #expect(m.received(.ready(DiskReady(index: 0, flags: 1))) == .startSending(0, targetIsZero: true))
    }
    @Test func matchingResultCompletesAndMismatchFails() {
        for (digest, expectDone) in [([UInt8](repeating: 1, count: 32), true), ([UInt8](repeating: 2, count: 32), false)] {
            var m = SenderStateMachine(diskCount: 1, capabilities: [])
            _ = m.start()
            _ = m.received(receiverHello)
            _ = m.received(.ready(DiskReady(index: 0)))
            #expect(m.allSent(disk: 0, digest: Array(repeating: 1, count: 32)) == .send(.finish(Finish(disk: 0, digest: Array(repeating: 1, count: 32)))))
            let action = m.received(.result(DiskResult(disk: 0, status: .verified, digest: digest)))
            if expectDone { #expect(action == .done) } else {
                guard case .fail(let e) = action else { Issue.record(); continue }
                #expect(e.code == .verification)
            }
        }
    }
    @Test func firstOfTwoDisksVerifiedLeavesTheSessionRunning() {
        var m = SenderStateMachine(diskCount: 2, capabilities: [])
        _ = m.start()
        _ = m.received(receiverHello)
        _ = m.received(.ready(DiskReady(index: 0)))
        _ = m.allSent(disk: 0, digest: Array(repeating: 1, count: 32))
        #expect(m.received(.result(DiskResult(disk: 0, status: .verified, digest: Array(repeating: 1, count: 32)))) == .diskVerified(0))
    }
    @Test func ackIsProgress() {
        var m = SenderStateMachine(diskCount: 1, capabilities: [])
        _ = m.start()
        _ = m.received(receiverHello)
        _ = m.received(.ready(DiskReady(index: 0)))
        #expect(m.received(.ack(Ack(disk: 0, written: 5, durable: 0))) == .progress(Ack(disk: 0, written: 5, durable: 0)))
    }
    @Test func resumeReadyWaitsForTheSegmentList() {
        var m = SenderStateMachine(diskCount: 1, capabilities: [])
        _ = m.start()
        _ = m.received(receiverHello)
        #expect(m.received(.ready(DiskReady(index: 0, flags: DiskReady.resume))) == .ignoreForNow)
        let first = SegmentList(disk: 0, segmentSize: 1 << 20, isFinal: false, entries: [])
        let last = SegmentList(disk: 0, segmentSize: 1 << 20, isFinal: true, entries: [])
        #expect(m.received(.segments(first)) == .resumeSegments(first, start: false))
        #expect(m.received(.segments(last)) == .resumeSegments(last, start: true))
        #expect(m.received(.ack(Ack(disk: 0, written: 1, durable: 1))) == .progress(Ack(disk: 0, written: 1, durable: 1)))
    }
    @Test func unexpectedMessageFails() {
        var m = SenderStateMachine(diskCount: 1, capabilities: [])
        _ = m.start()
        guard case .fail = m.received(.ready(DiskReady(index: 0))) else { Issue.record(); return }
    }
}

@Suite struct CoverageTests {
    @Test func mergesAndDetectsOverlap() throws {
        var c = Coverage()
        try c.insert(100..<200)
        try c.insert(0..<100)
        try c.insert(300..<400)
        #expect(c.runs == [0..<200, 300..<400])
        try c.insert(200..<300)
        #expect(c.runs == [0..<400])
        #expect(c.covers(size: 400))
        #expect(throws: ProtocolError.self) { try c.insert(399..<500) }
        #expect(throws: ProtocolError.self) { try c.insert(0..<1) }
    }
}
