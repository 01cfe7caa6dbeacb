import FerryTestSupport
import Foundation
import Testing

extension ESXiCommandTests {
    /// Issue 13: `ferry send esxi://…` reads the VM's disk from the host and streams it to a
    /// `ferry receive` on another port (ESXi → this host → the receiver), verified end to end:
    /// the received disk equals what qemu-img reads from the datastore's files.
    @Test func sendFromTheHostToAReceiver() throws {
        guard Tools.require("qemu-img", why: "makes the VMDK and reads it as the oracle"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        try ESXiReadTests.rawImage(dir.file("src.raw"), size: 9 << 20, seed: 72)
        try FileManager.default.createDirectory(atPath: sim.file("web"), withIntermediateDirectories: true)
        try ESXiReadTests.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), sim.file("web/web.vmdk"))
        try (VCSim.password + "\n").write(toFile: dir.file("pw"), atomically: true, encoding: .utf8)
        let port = TestPorts.unassigned()
        let out = dir.file("received.raw")
        // The sender retries its connection until the receiver listens; the receiver's status
        // is printed after the sender's so that both are checked.
        let script = """
            "$FERRY" receive '\(out)' --listen 127.0.0.1:\(port) --insecure --progress none 2> '\(dir.file("recv.log"))' &
            r=$!
            "$FERRY" send '\(sim.uri("web/web.vmdk"))' 127.0.0.1:\(port) --insecure --retry-for 30 --progress none --password-file '\(dir.file("pw"))'
            s=$?
            wait $r
            echo "sender=$s receiver=$?"
            """
        let run = try FerryExecutable.shell(script)
        let received = (try? String(contentsOfFile: dir.file("recv.log"), encoding: .utf8)) ?? ""
        #expect(run.stdout.contains("sender=0 receiver=0"), "\(run.stdout)\n\(run.stderr)\n\(received)")
        #expect(run.stderr.contains("verified"), "\(run.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(Array(bytes) == (try ESXiReadTests.oracle(sim.file("web/web.vmdk"), dir)))
    }
}
