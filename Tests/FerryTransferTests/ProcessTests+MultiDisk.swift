import FerryCopy
import Foundation
import Testing

/// Three disks in one session, both ends killed with kill -9 midway, then the same two
/// commands again: the committed disks are proven by hash (no data sent), the partial
/// one continues from its journal, and every target ends identical to its source.
/// (In the `ProcessTests` suite, so it never runs beside the other process tests.)
extension ProcessTests {
    @Test func killedThreeDiskSessionResumesEveryDisk() async throws {
        guard let ferry = ProcessTests.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        let make = """
            head -c 8388608 /dev/urandom > '\(dir)/src0.img' && \
            truncate -s 256M '\(dir)/src1.img' && \
            head -c 1048576 /dev/urandom | dd of='\(dir)/src1.img' bs=1M seek=100 conv=notrunc status=none && \
            head -c \(384 << 20) /dev/urandom > '\(dir)/src2.img'
            """
        #expect(try await ProcessTests.runOffPool("/bin/sh", ["-c", make]) == 0)
        let code = "7kqm-2xrt-9pfa-w3ne"
        let port = ProcessTests.freePort()
        let sources = (0..<3).map { "\(dir)/src\($0).img" }
        let targets = (0..<3).map { "\(dir)/dst\($0).img" }
        let receive = ["receive"] + targets + ["--listen", "127.0.0.1:\(port)", "--code", code, "--progress", "none"]
        let send = ["send"] + sources + ["127.0.0.1:\(port)", "--code", code, "--progress", "none"]

        // First attempt at 8 MB/s (at 32 MB/s a loaded CI machine once polled too late: the
        // transfer finished in the 4 s between the checkpoint and the end); both ends die by kill -9 once the big disk's journal
        // records its first checkpoint (256 MiB in). The two small disks are committed by then.
        let receiver1 = try ProcessTests.start(ferry, receive)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let sender1 = try ProcessTests.start(ferry, send + ["--limit", "8M"])
        let waited = try await ProcessTests.killBothAtFirstCheckpoint(
            sender1, receiver1, journal: dir + "/.dst2.img.ferry-journal")
        #expect(waited < 600, "the receiver never journaled a checkpoint of the big disk")
        #expect(FileManager.default.fileExists(atPath: targets[0]), "the small disk was committed before the kill")
        #expect(!FileManager.default.fileExists(atPath: targets[2]), "an interrupted copy must not have its final name")

        // Second attempt: the same two commands, at full speed.
        let (sender2, said, receiver2, receiverSaid) = try await ProcessTests.runBoth(ferry, receive: receive, send: send)
        print("sender: \(said)\nreceiver: \(receiverSaid)")
        #expect(sender2 == 0, "\(said)")
        #expect(receiver2 == 0, "\(receiverSaid)")
        for i in 0..<3 {
            #expect(Loopback.read(targets[i]) == Loopback.read(sources[i]), "disk \(i)")
        }
        // The committed disk crossed the wire as proofs only; the big one only in part.
        let lines = said.split(separator: "\n")
        #expect(lines.contains { $0.contains("src0.img: verified") && $0.hasSuffix("; 8.0 MiB, 0 B of data sent") }, "\(said)")
        let big = try #require(lines.first { $0.contains("src2.img: verified") })
        // "…; 384 MiB, 120 MiB of data sent": the amount before "of data sent", in binary units.
        let words = big.split(separator: " ").dropLast(3)
        let units: [Substring: Double] = ["B": 1, "KiB": 1024, "MiB": 1_048_576, "GiB": 1_073_741_824]
        let sent = try #require(words.dropLast().last.flatMap { Double($0) }.flatMap { v in words.last.flatMap { units[$0] }.map { v * $0 } })
        #expect(sent < Double(384 << 20), "\(big)")
        #expect(said.contains("3 disks, "), "\(said)")
        let journals = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix("journal") }
        #expect(journals.isEmpty, "\(journals)")
    }
}

extension ProcessTests {
    /// Two disks, one progress report over both on each side: the last JSON sample's
    /// total is the sum of the sizes and every byte of it was counted.
    @Test func progressCoversEveryDisk() async throws {
        guard let ferry = Self.binaryOrSkip() else { return }
        let dir = try Loopback.temporaryDirectory()
        let a = try Loopback.makeDisk(at: dir + "/a.img", size: 3 * 1024 * 1024 + 100, seed: 81)
        let b = try Loopback.makeRandomDisk(at: dir + "/b.img", size: 5 * 1024 * 1024, seed: 82)
        let port = Self.freePort()
        let (sender, said, receiver, receiverSaid) = try await Self.runBoth(
            ferry,
            receive: ["receive", dir + "/a2.img", dir + "/b2.img", "--listen", "127.0.0.1:\(port)", "--insecure", "--progress", "json"],
            send: ["send", dir + "/a.img", dir + "/b.img", "127.0.0.1:\(port)", "--insecure", "--progress", "json"])
        #expect(sender == 0, "\(said)")
        #expect(receiver == 0, "\(receiverSaid)")
        #expect(Loopback.read(dir + "/a2.img") == a)
        #expect(Loopback.read(dir + "/b2.img") == b)
        let total = a.count + b.count
        for (side, text) in [("sender", said), ("receiver", receiverSaid)] {
            let last = try #require(text.split(separator: "\n").last { $0.hasPrefix("{") }, "\(side): \(text)")
            let sample = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
            #expect(sample?["total"] as? Int == total, "\(side): \(last)")
            #expect(sample?["bytes"] as? Int == total, "\(side): \(last)")
            // The whole run's limiting stage, and the wire size of the data (no larger
            // than the data: compression never expands what is sent).
            let stages = Stage.allCases.map(\.rawValue)
            #expect(stages.contains(sample?["bottleneck"] as? String ?? "none"), "\(side): \(last)")
            let wire = sample?["wireBytes"] as? Int ?? 0
            let data = sample?["dataBytes"] as? Int ?? 0
            #expect(wire > 0 && wire <= data, "\(side): \(last)")
        }
    }
}
