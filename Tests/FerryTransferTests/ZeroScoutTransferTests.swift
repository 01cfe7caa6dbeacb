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
    static let mib = 1 << 20

    /// 64 MiB: 6 MiB of random data, then zeros but for one data byte at 40 MiB + 12345.
    static func disk() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64 * mib)
        var rng = SeededRandom(seed: 14)
        for i in stride(from: 0, to: 6 * mib, by: 8) {
            var v = rng.next()
            for j in i..<i + 8 {
                bytes[j] = UInt8(truncatingIfNeeded: v)
                v >>= 8
            }
        }
        bytes[40 * mib + 12345] = 0x5A
        return bytes
    }

    @Test func aWholeReadSourceOverASlowLinkSendsItsScoutedTailUnread() async throws {
        let mib = Self.mib
        let bytes = Self.disk()
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

    /// The same through a pipe (`ferry send SRC - | ssh … ferry receive`) that drains slowly:
    /// a relay thread passes 64 KiB on every 2 ms.
    @Test func aWholeReadSourceThroughASlowPipeSendsItsScoutedTailUnread() async throws {
        let mib = Self.mib
        let bytes = Self.disk()
        let dir = try Loopback.temporaryDirectory()
        var first: [Int32] = [0, 0]
        var second: [Int32] = [0, 0]
        #expect(pipe(&first) == 0)
        #expect(pipe(&second) == 0)
        let (relayIn, sendEnd, receiveEnd, relayOut) = (first[0], first[1], second[0], second[1])
        let relay = Thread {
            let piece = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
            defer { piece.deallocate(); close(relayOut); close(relayIn) }
            while true {
                let n = read(relayIn, piece.baseAddress, piece.count)
                guard n > 0 else { return }
                var done = 0
                while done < n {
                    let w = write(relayOut, piece.baseAddress! + done, n - done)
                    guard w > 0 else { return }
                    done += w
                }
                usleep(2000)
            }
        }
        relay.start()
        var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "-", port: 0))
        rc.progress = .none
        let receiverConfig = rc
        let receiver = Task { try await onThread { try PipeTransfer.receive(from: receiveEnd, receiverConfig) } }
        var sc = SendConfiguration(destination: HostPort(host: "-", port: 0))
        sc.progress = .none
        let senderConfig = sc
        let source = FaultyDevice(MemoryDevice(bytes: bytes, writable: false), wholeRead: true)
        let sent = try await onThread { try PipeTransfer.send(sources: [source], to: sendEnd, senderConfig) }
        close(sendEnd)
        let received = try await receiver.value
        close(receiveEnd)

        #expect(Loopback.read(dir + "/dst.img") == bytes)
        #expect(sent.disks.first?.digest == received.disks.first?.digest)
        #expect(sent.disks.first?.digest == (try Loopback.digest(of: dir + "/dst.img")))
        let scouted = try #require(sent.disks.first?.zeroScouted)
        #expect(scouted > 0, "the scout found none of the 57 MiB zero tail")
        #expect(scouted < UInt64(58 * mib))
    }
}
}
