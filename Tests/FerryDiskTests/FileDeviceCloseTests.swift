import FerryDisk
import FerryTestSupport
import Foundation
import Synchronization
import Testing

/// `FileDevice.close()` while other threads use the device: no operation may run on a
/// descriptor number the kernel has reused for another file, and every operation after
/// `close()` fails as "closed" instead of reaching whatever the number means by then.
@Suite struct FileDeviceCloseTests {
    @Test func operationsAfterCloseFailAsClosed() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("a.raw")
        try writeSparseFile(path, size: 1 << 20, layout: [(0, [UInt8](repeating: 0xAA, count: 4096))])
        let device = try FileDevice.openForWriting(path)
        try device.close()
        func isClosed(_ error: any Error) -> Bool { (error as? DiskError)?.code == .closed }
        #expect { _ = try device.readBytes(at: 0, count: 4096) } throws: { isClosed($0) }
        #expect { _ = try device.extents(at: 0, length: device.size) } throws: { isClosed($0) }
        #expect { try device.flush() } throws: { isClosed($0) }
        #expect { try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try device.write($0, at: 0) } } throws: { isClosed($0) }
        #expect { try device.writeZeros(at: 0, length: 4096, mayDiscard: true) } throws: { isClosed($0) }
        try device.close()  // closing twice is harmless
    }

    /// Readers race a `close()` followed by a burst of opens of another file, which
    /// grab the freed descriptor number: each read returns the first file's bytes or
    /// fails as closed, never the other file's bytes.
    @Test func closeUnderInFlightReadsNeverReadsAnotherFile() throws {
        let dir = try TemporaryDirectory()
        let a = dir.file("a.raw"), b = dir.file("b.raw")
        try Data(repeating: 0xAA, count: 1 << 20).write(to: URL(fileURLWithPath: a))
        try Data(repeating: 0xBB, count: 1 << 20).write(to: URL(fileURLWithPath: b))
        for round in 0..<20 {
            let device = try FileDevice.openForReading(a)
            let tally = Tally()
            let finished = DispatchSemaphore(value: 0)
            for t in 0..<3 {
                Thread {
                    defer { finished.signal() }
                    var offset: UInt64 = UInt64(t) * 4096
                    tally.started.add(1, ordering: .relaxed)
                    while true {
                        do {
                            let bytes = try device.readBytes(at: offset % (1 << 20), count: 4096)
                            if bytes.contains(where: { $0 != 0xAA }) { tally.foreign.add(1, ordering: .relaxed) }
                        } catch let error as DiskError where error.code == .closed {
                            return
                        } catch {
                            tally.otherErrors.add(1, ordering: .relaxed)
                            return
                        }
                        offset += 4096
                    }
                }.start()
            }
            while tally.started.load(ordering: .relaxed) < 3 { sched_yield() }
            try device.close()
            let others = try (0..<16).map { _ in try FileDevice.openForReading(b) }
            for _ in 0..<3 {
                // A guard against a hang, not a timing assertion.
                #expect(finished.wait(timeout: .now() + 60) == .success, "round \(round): a reader did not stop")
            }
            #expect(tally.foreign.load(ordering: .relaxed) == 0, "round \(round): a read returned another file's bytes")
            #expect(tally.otherErrors.load(ordering: .relaxed) == 0, "round \(round): a read failed other than as closed")
            for other in others { try other.close() }
        }
    }
}

private final class Tally: Sendable {
    let foreign = Atomic<Int>(0)
    let otherErrors = Atomic<Int>(0)
    let started = Atomic<Int>(0)
}
