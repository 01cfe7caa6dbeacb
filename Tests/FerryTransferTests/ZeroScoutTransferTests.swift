import FerryCopy
import FerryDisk
import FerryTestSupport
import FerryTransfer
import Foundation
import Testing

extension InProcessNetwork {
/// A source read whole (no extents: a block device) over a link slower than the disk: the
/// zero scout finds the never-written tail while the data crosses, the tail goes as zero
/// extents without a second read, and the target is identical and verified.
@Suite(.serialized) struct ZeroScoutTransferTests {
    @Test func aWholeReadSourceOverASlowLinkSendsItsScoutedTailUnread() async throws {
        let mib = 1 << 20
        var bytes = [UInt8](repeating: 0, count: 64 * mib)
        var rng = SeededRandom(seed: 14)
        for i in stride(from: 0, to: 6 * mib, by: 8) {
            var v = rng.next()
            for j in i..<i + 8 {
                bytes[j] = UInt8(truncatingIfNeeded: v)
                v >>= 8
            }
        }
        bytes[40 * mib + 12345] = 0x5A  // one data byte inside the tail
        let source = FaultyDevice(MemoryDevice(bytes: bytes, writable: false), wholeRead: true)
        let dir = try Loopback.temporaryDirectory()
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "127.0.0.1", port: 0)).withTestTimeouts()
        rc.insecure = true
        let (receiver, port) = try await Loopback.startReceiver(rc)
        var sc = Loopback.sendConfig(port: port, code: nil)
        sc.compress = .none
        sc.limit = 3_000_000  // bytes/s: the 6 MiB of data take about two seconds; the disk is idle meanwhile
        let sent = try await TransferSender.run(sources: [source], sc)
        let received = try await receiver.value

        #expect(Loopback.read(dir + "/dst.img") == bytes)
        let expected = try #require(try Loopback.digest(of: dir + "/dst.img"))
        #expect(sent.disks.first?.digest == expected)
        #expect(received.disks.first?.digest == expected)
        let scouted = try #require(sent.disks.first?.zeroScouted)
        #expect(scouted > 0, "the scout found none of the 57 MiB zero tail")
        #expect(scouted < UInt64(58 * mib))  // never the grain with the data byte, nor the data
        // The copy read what the scout did not vouch for, and the scout read ahead once.
        #expect(source.bytesRead.load(ordering: .relaxed) <= UInt64(bytes.count) * 2 - scouted)
    }
}
}
