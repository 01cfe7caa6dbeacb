import Foundation
import FerryTestSupport
import Synchronization
import Testing

/// govmomi's vSphere simulator with ferry's wrapper (Tests/Fixtures/vcsim/main.go): built once
/// per test run with Debian's golang-go and golang-github-vmware-govmomi-dev, started per test
/// with the behaviours the test needs, stopped by closing its standard input.
final class VCSim: Sendable {
    let url: String
    let datastoreDirectory: String
    let datastore: String
    let fingerprint: String
    let host: String
    let port: Int
    private let process: Process
    private let input: FileHandle

    static let user = "root"
    static let password = "s3cret pass:word"

    private static let built = Mutex<String??>(nil)

    /// The simulator binary, built on first use (nil after a skip when Go or govmomi is missing).
    static func binary() -> String? {
        built.withLock { cached in
            if let cached { return cached }
            let result = build()
            cached = .some(result)
            return result
        }
    }

    private static func build() -> String? {
        guard Tools.require("go", why: "builds the vSphere simulator (golang-go)") else { return nil }
        guard FileManager.default.fileExists(atPath: "/usr/share/gocode/src/github.com/vmware/govmomi/simulator") else {
            Skip.because("golang-github-vmware-govmomi-dev is not installed (the vSphere simulator's source)")
            return nil
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let out = root + "/.build/ferry-vcsim"
        if let env = ProcessInfo.processInfo.environment["FERRY_VCSIM"], FileManager.default.isExecutableFile(atPath: env) { return env }
        do {
            let result = try Tools.run("/bin/sh", [root + "/Tests/Fixtures/vcsim/build.sh", out])
            guard result.status == 0 else {
                Issue.record("building the vSphere simulator failed: \(result.stderr)")
                return nil
            }
        } catch {
            Issue.record("building the vSphere simulator failed: \(error)")
            return nil
        }
        return out
    }

    /// Starts a simulator; `flags` are the wrapper's (`-cookie-ttl 2s`, `-busy-every 3`, …).
    init?(_ flags: [String] = []) throws {
        guard let binary = Self.binary() else { return nil }
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-user", Self.user, "-pass", Self.password, "-power", "off"] + flags
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        input = stdin.fileHandleForWriting
        // The first line is the JSON greeting; the simulator prints nothing else on stdout.
        var line = Data()
        let reader = stdout.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let object = try JSONSerialization.jsonObject(with: line) as? [String: String],
            let url = object["url"], let dir = object["datastore"], let ds = object["dsName"], let fp = object["fingerprint"],
            let parsed = URL(string: url), let host = parsed.host, let port = parsed.port
        else {
            throw CocoaError(.fileReadCorruptFile)
        }
        (self.url, datastoreDirectory, datastore, fingerprint, self.host, self.port) = (url, dir, ds, fp, host, port)
    }

    deinit { stop() }

    func stop() {
        try? input.close()
        process.waitUntilExit()
    }

    /// `esxi://root@127.0.0.1:PORT/[LocalDS_0] path?fingerprint=…`
    func uri(_ path: String, pin: Bool = true) -> String {
        "esxi://\(Self.user)@\(host):\(port)/[\(datastore)] \(path)" + (pin ? "?fingerprint=\(fingerprint)" : "")
    }

    /// The wrapper's counters (`requests`, `ranged`, `bytes`, `basic`, `rejected`, `busy`, `cuts`).
    func stats() throws -> [String: Int] {
        let result = try Tools.run("/usr/bin/curl", ["-sk", url + "/ferry-stats"])
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Int]) ?? [:]
    }

    /// Writes `bytes` to `path` inside the datastore directory.
    func put(_ path: String, _ bytes: [UInt8]) throws {
        let full = datastoreDirectory + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
    }

    func file(_ path: String) -> String { datastoreDirectory + "/" + path }
}

extension VCSim {
    /// `esxi://root@127.0.0.1:PORT/NAME?fingerprint=…` (a VM by name), with more query items.
    func vmURI(_ name: String, _ query: String = "") -> String {
        "esxi://\(Self.user)@\(host):\(port)/\(name)?fingerprint=\(fingerprint)" + (query.isEmpty ? "" : "&" + query)
    }

    /// The datastore directory's path of a vSphere file name (`[LocalDS_0] vm/disk1.vmdk`).
    func file(datastorePath name: String) -> String {
        file(String(name.drop(while: { $0 != "]" }).dropFirst().drop(while: { $0 == " " })))
    }
}
