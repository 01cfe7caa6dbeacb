import FerryCopy
import FerryDisk
import FerryTestSupport
import Testing

/// The zero scout and the planner: what the scout found all zero is handed out as zero
/// requests (not read again), and nothing that holds a byte of data ever is.
@Suite struct ZeroScoutTests {
    static let mib = 1 << 20

    /// A device that must be read whole (no extents, like a block device) holding `bytes`.
    static func wholeRead(_ bytes: [UInt8]) -> FaultyDevice {
        FaultyDevice(MemoryDevice(bytes: bytes, writable: false), wholeRead: true)
    }

    /// Steps the scout until it scanned `bytes` in all (or stopped making progress).
    static func scan(_ scout: ZeroScout, upTo bytes: UInt64) {
        while scout.statistics.scanned < bytes {
            let before = scout.statistics.scanned
            scout.step()
            if scout.statistics.scanned == before { return }
        }
    }

    static func drain(_ planner: CopyPlanner) throws -> [CopyRequest] {
        var requests: [CopyRequest] = []
        while let r = try planner.next() { requests.append(r) }
        return requests
    }

    @Test func scoutedZerosAreHandedOutAsOneZeroRequestEach() throws {
        let mib = Self.mib
        var bytes = [UInt8](repeating: 0, count: 40 * mib)
        for i in 0..<2 * mib { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        bytes[31 * mib - 1] = 1  // the last byte of the grain at 30 MiB: that grain is data
        let device = Self.wholeRead(bytes)
        let scout = ZeroScout(source: device, grain: UInt64(mib), lead: 0)
        Self.scan(scout, upTo: device.size)
        #expect(scout.statistics.scanned == device.size)
        #expect(scout.statistics.found == UInt64(37 * mib))

        let readBefore = device.bytesRead.load(ordering: .relaxed)
        let planner = CopyPlanner(source: device, requestSize: mib, scout: scout)
        let requests = try Self.drain(planner)
        #expect(device.bytesRead.load(ordering: .relaxed) == readBefore)  // planning reads nothing
        let m = UInt64(mib)
        #expect(requests == [
            CopyRequest(at: 0, length: m, kind: .data),
            CopyRequest(at: m, length: m, kind: .data),
            CopyRequest(at: 2 * m, length: 28 * m, kind: .zero),
            CopyRequest(at: 30 * m, length: m, kind: .data),
            CopyRequest(at: 31 * m, length: 9 * m, kind: .zero),
        ])
        #expect(scout.statistics.skipped == 37 * m)
    }

    /// Without a scan the planner is the plain one: every request is data, read by the copy.
    @Test func anUnscannedDiskIsReadAsBefore() throws {
        let device = Self.wholeRead([UInt8](repeating: 0, count: 8 * Self.mib))
        let scout = ZeroScout(source: device, grain: UInt64(Self.mib))
        let requests = try Self.drain(CopyPlanner(source: device, requestSize: Self.mib, scout: scout))
        #expect(requests.count == 8)
        #expect(requests.allSatisfy { $0.kind == .data })
        #expect(scout.statistics.skipped == 0)
    }

    /// Seeded random layouts, the scout's steps interleaved with the copy's requests at
    /// random: the requests cover the disk once, in order, and every zero request reads as
    /// zeros (a single data byte anywhere in a grain keeps it data).
    @Test(arguments: 0..<24)
    func interleavedScoutNeverCallsDataZero(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &* 0x9E37_79B9 &+ 1)
        let grain = 4 * DiskDigest.blockSize
        let grains = 16 + Int(rng.next() % 48)
        var bytes = [UInt8](repeating: 0, count: grains * grain - Int(rng.next() % 3) * 4096)
        for g in 0..<grains where rng.next() % 3 == 0 {
            let at = g * grain + Int(rng.next() % UInt64(grain))
            if at < bytes.count { bytes[at] = UInt8(1 + rng.next() % 255) }
        }
        let device = Self.wholeRead(bytes)
        let scout = ZeroScout(
            source: device, grain: UInt64(grain), lead: UInt64(rng.next() % 3) * UInt64(grain),
            stepGrains: 1 + Int(rng.next() % 4), maxRuns: 1 + Int(rng.next() % 6))
        let planner = CopyPlanner(source: device, requestSize: grain, scout: scout)
        var position: UInt64 = 0
        while true {
            for _ in 0..<Int(rng.next() % 4) { scout.step() }
            guard let r = try planner.next() else { break }
            #expect(r.offset == position)
            position += r.length
            if r.kind == .zero {
                let range = Int(r.offset)..<Int(r.offset + r.length)
                #expect(bytes[range].allSatisfy { $0 == 0 }, "zero request \(r) holds data")
            }
        }
        #expect(position == device.size)
        #expect(scout.statistics.skipped <= scout.statistics.found)
        #expect(scout.statistics.found <= scout.statistics.scanned)
    }

    /// At most `maxRuns` separate ranges wait ahead of the copy; the scout goes on once the
    /// copy has taken them.
    @Test func theScoutWaitsWhenItsRangeListIsFull() throws {
        let grain = DiskDigest.blockSize
        var bytes = [UInt8](repeating: 0, count: 32 * grain)
        for g in stride(from: 1, to: 32, by: 2) { bytes[g * grain] = 9 }  // zero, data, zero, data…
        let device = Self.wholeRead(bytes)
        let scout = ZeroScout(source: device, grain: UInt64(grain), lead: 0, stepGrains: 32, maxRuns: 3)
        scout.step()
        #expect(scout.statistics.found == UInt64(3 * grain))
        #expect(scout.statistics.scanned < device.size)
        let planner = CopyPlanner(source: device, requestSize: grain, scout: scout)
        for _ in 0..<6 { _ = try planner.next() }
        scout.step()
        #expect(scout.statistics.found == UInt64(6 * grain))
    }

    /// A read error stops the scout (the copy will meet the error itself and report it).
    @Test func aReadErrorStopsTheScoutAndNotTheCopyPlan() throws {
        let mib = Self.mib
        let device = FaultyDevice(
            MemoryDevice(bytes: [UInt8](repeating: 0, count: 8 * mib), writable: false), failAt: UInt64(4 * mib),
            wholeRead: true)
        let scout = ZeroScout(source: device, grain: UInt64(mib), lead: 0, stepGrains: 8)
        scout.step()
        #expect(scout.statistics.scanned == UInt64(4 * mib))
        scout.step()
        #expect(scout.statistics.scanned == UInt64(4 * mib))
        let requests = try Self.drain(CopyPlanner(source: device, requestSize: mib, scout: scout))
        #expect(requests.first == CopyRequest(at: 0, length: UInt64(4 * mib), kind: .zero))
        #expect(requests.dropFirst().allSatisfy { $0.kind == .data })
    }

    @Test func onlyDisksReadWholeAndLocallyAreScouted() throws {
        let bytes = [UInt8](repeating: 0, count: 16 * Self.mib)
        #expect(ZeroScout.worthwhile(for: Self.wholeRead(bytes)))
        #expect(!ZeroScout.worthwhile(for: MemoryDevice(bytes: bytes)))  // extents say where the data is
        #expect(!ZeroScout.worthwhile(for: Self.wholeRead([UInt8](repeating: 0, count: 64 * 1024))))  // too small to matter
    }

    @Test func stopWaitsForTheStepAndEndsScanning() async throws {
        let device = Self.wholeRead([UInt8](repeating: 0, count: 64 * Self.mib))
        let scout = ZeroScout(source: device, grain: UInt64(Self.mib), lead: 0, stepGrains: 4)
        scout.kick()
        await scout.stop()
        let after = scout.statistics.scanned
        scout.kick()
        scout.step()
        await scout.stop()
        #expect(scout.statistics.scanned == after)
        #expect(after <= UInt64(4 * Self.mib))
    }
}
