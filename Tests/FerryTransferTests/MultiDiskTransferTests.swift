import FerryDisk
import FerryProtocol
import FerryTransfer
import Foundation
import Testing

extension InProcessNetwork {
/// Several disks in one session over real loopback sockets: side by side on the one
/// connection, each verified, and resumable disk by disk after a cut.
@Suite(.serialized) struct MultiDiskTransferTests {
    struct Disks {
        var dir: String
        var bytes: [[UInt8]]
        var sources: [String] { (0..<bytes.count).map { dir + "/src\($0).img" } }
        var targets: [String] { (0..<bytes.count).map { dir + "/dst\($0).img" } }
        var sizes: [UInt64] { bytes.map { UInt64($0.count) } }

        func open() throws -> [any BlockDevice] { try sources.map { try FileDevice.openForReading($0) } }
    }

    /// Three disks of different kinds: mixed data and zeros of a size that is not a whole
    /// number of 64 KiB blocks, mostly zeros with a few data blocks, all random.
    static func makeDisks(mixed: Int, mostlyZero: Int, random: Int, seed: UInt64) throws -> Disks {
        let dir = try Loopback.temporaryDirectory()
        var disks = Disks(dir: dir, bytes: [])
        disks.bytes.append(try Loopback.makeDisk(at: dir + "/src0.img", size: mixed, seed: seed))
        disks.bytes.append(try makeMostlyZeroDisk(at: dir + "/src1.img", size: mostlyZero, seed: seed + 1))
        disks.bytes.append(try Loopback.makeRandomDisk(at: dir + "/src2.img", size: random, seed: seed + 2))
        return disks
    }

    /// Zeros but for eight random 64 KiB blocks at random places.
    static func makeMostlyZeroDisk(at path: String, size: Int, seed: UInt64) throws -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var bytes = [UInt8](repeating: 0, count: size)
        for _ in 0..<8 {
            let block = Int(rng.next() % UInt64(size / 65536))
            for i in block * 65536..<(block + 1) * 65536 { bytes[i] = UInt8(truncatingIfNeeded: rng.next() | 1) }
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return bytes
    }

    static func receiverConfig(_ disks: Disks, retry: Double = 0) -> ReceiveConfiguration {
        Loopback.resumableReceiver(targets: disks.targets, retry: retry)
    }

    /// Bytes of the 64 KiB blocks that are not all zeros: what a sender must put on the wire.
    static func dataBytes(_ bytes: [UInt8]) -> UInt64 {
        stride(from: 0, to: bytes.count, by: 65536).reduce(UInt64(0)) { sum, start in
            let end = min(start + 65536, bytes.count)
            return bytes[start..<end].contains { $0 != 0 } ? sum + UInt64(end - start) : sum
        }
    }

    static func journals(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".ferry-journal") }.sorted()
    }

    /// Every target equals its source, byte for byte and by the copy engine's digest.
    static func expectIdentical(_ disks: Disks, _ sent: TransferSummary) throws {
        for i in 0..<disks.bytes.count {
            #expect(Loopback.read(disks.targets[i]) == disks.bytes[i], "disk \(i)")
            #expect(sent.disks[i].digest == (try Loopback.digest(of: disks.sources[i])), "disk \(i)")
        }
        #expect(journals(in: disks.dir).isEmpty, "journals left: \(journals(in: disks.dir))")
    }

    @Test func threeDisksInterleaveOnOneConnectionAndArriveIdentical() async throws {
        let disks = try Self.makeDisks(mixed: 6 * 1024 * 1024 + 12345, mostlyZero: 24 << 20, random: 12 << 20, seed: 71)
        let (receiver, port) = try await Loopback.startReceiver(Self.receiverConfig(disks))
        let tap = try await TapProxy.start(relayingTo: port)
        var sc = Loopback.sendConfig(port: tap.port, code: nil)
        sc.compress = .none
        // Paced (about a second for the 18 MiB of data), so every disk's workers are waiting for
        // request permits at once, as on a real link: unpaced on a loaded machine, the first disk's
        // 6 MiB could all go before the others' workers were scheduled (switches == 2, seen in a
        // full run with four builds beside it), which says nothing about the interleaving.
        sc.limit = 16 << 20
        let sent = try await TransferSender.run(sources: try disks.open(), sc)
        let received = try await receiver.value
        tap.stop()

        try Self.expectIdentical(disks, sent)
        #expect(sent.disks.map(\.size) == disks.sizes)
        #expect(received.disks.map(\.size) == disks.sizes)
        #expect(received.disks.map(\.digest) == sent.disks.map(\.digest))
        // Each disk sent its data blocks and none of its zeros (eight blocks for the mostly-zero one).
        #expect(sent.disks.map(\.dataBytes) == disks.bytes.map(Self.dataBytes))
        #expect(sent.disks[1].dataBytes <= 8 * 65536, "\(sent.disks[1].dataBytes)")

        // On the wire: every disk described before any extent, then the disks' extents
        // interleaved. One after another would switch disks exactly twice.
        let records = tap.records
        let lastDescription = try #require(records.lastIndex { $0.kind == .disk })
        let firstExtent = try #require(records.firstIndex { $0.kind == .data || $0.kind == .zero })
        #expect(lastDescription < firstExtent)
        #expect(records.filter { $0.kind == .disk }.compactMap(\.disk) == [0, 1, 2])
        let extents = records.filter { $0.kind == .data || $0.kind == .zero }.compactMap(\.disk)
        let switches = zip(extents, extents.dropFirst()).filter { $0 != $1 }.count
        print("extents \(extents.count), disk switches \(switches)")
        #expect(switches > 2, "extents by disk: \(extents)")
        // Each disk finished once, after its own last extent.
        for disk in UInt32(0)..<3 {
            let finishes = records.indices.filter { records[$0].kind == .finish && records[$0].disk == disk }
            let lastExtent = try #require(records.lastIndex { ($0.kind == .data || $0.kind == .zero) && $0.disk == disk })
            #expect(finishes.count == 1 && finishes[0] > lastExtent)
        }
    }

    @Test func cutSessionReconnectsAndEveryDiskArrives() async throws {
        let disks = try Self.makeDisks(mixed: 3 * 1024 * 1024 + 777, mostlyZero: 8 << 20, random: 12 << 20, seed: 72)
        let (receiver, port) = try await Loopback.startReceiver(Self.receiverConfig(disks, retry: 90))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.dropAfterBytes = 8 << 20
        sc.retryFor = 90
        sc.compress = .none
        let sent = try await TransferSender.run(sources: try disks.open(), sc)
        _ = try await receiver.value
        try Self.expectIdentical(disks, sent)
        // The summary counts both connections: every data block went at least once.
        let total = sent.disks.reduce(0) { $0 + $1.dataBytes }
        #expect(total >= disks.bytes.map(Self.dataBytes).reduce(0, +), "\(total)")
    }

    /// The first run is cut (no retry) once a small disk has been committed and a big
    /// one is half sent; the same two calls again finish every disk without sending the
    /// committed one again and only part of the half-sent one.
    @Test func rerunAfterACutProvesCommittedDisksAndResumesTheRest() async throws {
        let disks = try Self.makeDisks(mixed: 1024 * 1024 + 4321, mostlyZero: 16 << 20, random: 32 << 20, seed: 73)
        try await interruptedSession(disks)
        let sent = try await finishSession(disks)
        try Self.expectIdentical(disks, sent)
        // The committed disk was proven by hash, not sent.
        #expect(sent.disks[0].dataBytes == 0, "\(sent.disks[0].dataBytes)")
        let total = sent.disks.reduce(0) { $0 + $1.dataBytes }
        print("rerun sent \(total) data bytes of \(disks.sizes.reduce(0, +))")
        // What reached the receiver's journal is proven, not sent: the big disk goes only
        // partly again (what was in flight at the cut and not yet checkpointed goes again).
        // About 22 MiB of it had been sent at the cut; at least 4 MiB must have been proven.
        #expect(sent.disks[2].dataBytes < disks.sizes[2] - (4 << 20), "\(sent.disks[2].dataBytes)")
    }

    @Test func rerunResendsWhatChangedInACommittedDisk() async throws {
        var disks = try Self.makeDisks(mixed: 1024 * 1024 + 4321, mostlyZero: 16 << 20, random: 32 << 20, seed: 74)
        try await interruptedSession(disks)
        // Change the committed disk's source: the rerun must notice by hash and resend.
        let at = try #require(disks.bytes[0].firstIndex { $0 != 0 })
        disks.bytes[0][at] ^= 0xFF
        _ = FileManager.default.createFile(atPath: disks.sources[0], contents: Data(disks.bytes[0]))
        let sent = try await finishSession(disks)
        try Self.expectIdentical(disks, sent)
        #expect(sent.disks[0].dataBytes > 0)
        #expect(sent.disks[0].dataBytes <= 1 << 20, "only the changed 1 MiB segment goes again")
    }

    func interruptedSession(_ disks: Disks) async throws {
        let (receiver, port) = try await Loopback.startReceiver(Self.receiverConfig(disks))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.dropAfterBytes = 24 << 20
        sc.compress = .none
        sc.workers = 2
        // Slow enough that the receiver keeps up even on a loaded machine: unthrottled on
        // loopback, the socket buffers and the receiver's queue can hold 30 MiB and more
        // that a cut throws away, which would leave the big disk's journal empty.
        sc.limit = 16 << 20
        do {
            _ = try await TransferSender.run(sources: try disks.open(), sc)
            Issue.record("the cut session succeeded")
        } catch let error as TransferError {
            #expect(error.kind == .network, "\(error)")
        }
        await #expect(throws: TransferError.self) { _ = try await receiver.value }
        // The small disk is committed under its own name with its journal kept; the big
        // one is a partial file with its journal.
        #expect(FileManager.default.fileExists(atPath: disks.targets[0]))
        #expect(FileManager.default.fileExists(atPath: disks.dir + "/.dst0.img.ferry-journal"))
        #expect(!FileManager.default.fileExists(atPath: disks.targets[2]))
        #expect(FileManager.default.fileExists(atPath: disks.dir + "/.dst2.img.ferry-partial"))
        for j in Self.journals(in: disks.dir) {
            let size = (try? FileManager.default.attributesOfItem(atPath: disks.dir + "/" + j)[.size] as? Int) ?? 0
            print("journal \(j): \(size) bytes")
        }
    }

    func finishSession(_ disks: Disks) async throws -> TransferSummary {
        let (receiver, port) = try await Loopback.startReceiver(Self.receiverConfig(disks))
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.compress = .none
        let sent = try await TransferSender.run(sources: try disks.open(), sc)
        _ = try await receiver.value
        return sent
    }
}
}
