import FerryTestSupport
import Foundation
import Testing

/// A real link cut between two network namespaces (veth pair, `ip link set down`):
/// the transfer must ride it out and finish byte-identical. Root only; skips with a
/// printed reason otherwise, or until the binary has send/receive. Traffic stays on
/// the veth pair the test creates.
@Suite(.serialized) struct LinkCutTests {
    static func sh(_ arguments: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test func transferSurvivesALinkCut() async throws {
        guard getuid() == 0 else {
            Skip.because("link-cut test needs root (ip netns)")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/usr/bin/ip") else {
            Skip.because("iproute2 (ip) not installed")
            return
        }
        guard let ferry = ProcessTests.binary else {
            Skip.because(".build/debug/ferry with send/receive is not built yet")
            return
        }
        let tag = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
        let ns = "ferrytest\(tag)"
        let (a, b) = ("fv\(tag)a", "fv\(tag)b")
        let octet = Int.random(in: 1...250)
        let (hostIP, nsIP) = ("10.231.\(octet).1", "10.231.\(octet).2")
        guard Self.sh(["ip", "netns", "add", ns]) == 0 else {
            Skip.because("cannot create a network namespace here")
            return
        }
        defer {
            _ = Self.sh(["ip", "link", "del", a])
            _ = Self.sh(["ip", "netns", "del", ns])
        }
        for command in [
            ["ip", "link", "add", a, "type", "veth", "peer", "name", b],
            ["ip", "link", "set", b, "netns", ns],
            ["ip", "addr", "add", "\(hostIP)/30", "dev", a],
            ["ip", "link", "set", a, "up"],
            ["ip", "netns", "exec", ns, "ip", "addr", "add", "\(nsIP)/30", "dev", b],
            ["ip", "netns", "exec", ns, "ip", "link", "set", b, "up"],
            ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
        ] {
            guard Self.sh(command) == 0 else {
                Skip.because("could not set up the veth pair (\(command.joined(separator: " ")))")
                return
            }
        }
        let dir = try Loopback.temporaryDirectory()
        let bytes = try Loopback.makeRandomDisk(at: dir + "/src.img", size: 40 << 20, seed: 61)
        let port = TestPorts.unassigned()
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = [
            "ip", "netns", "exec", ns, ferry, "receive", dir + "/dst.img", "--listen", "\(nsIP):\(port)", "--insecure",
            "--retry-for", "60", "--progress", "none",
        ]
        receiver.standardError = FileHandle.nullDevice
        try receiver.run()
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let sender = try ProcessTests.start(ferry, [
            "send", dir + "/src.img", "\(nsIP):\(port)", "--insecure", "--limit", "16M", "--retry-for", "60",
            "--progress", "none", "--compress", "none",
        ])
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(Self.sh(["ip", "link", "set", a, "down"]) == 0)
        try await Task.sleep(nanoseconds: 3_000_000_000)
        #expect(Self.sh(["ip", "link", "set", a, "up"]) == 0)
        // Blocking waits on a thread of their own: the cooperative pool has two threads here.
        try await onThread {
            sender.waitUntilExit()
            receiver.waitUntilExit()
        }
        #expect(sender.terminationStatus == 0)
        #expect(receiver.terminationStatus == 0)
        #expect(Loopback.read(dir + "/dst.img") == bytes)
    }
}
