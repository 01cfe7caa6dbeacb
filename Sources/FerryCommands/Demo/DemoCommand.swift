public import ArgumentParser
import FerryCopy
import FerryDisk
import Foundation

/// `ferry demo`: the whole migration in miniature, on a sample disk it makes.
public struct DemoCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the migration story in miniature on a generated sample VM disk, explaining each step.",
        discussion: """
            Example: run the demo and keep its files (a sample VMDK, its qcow2 copy, the received disk):
              ferry demo --directory /tmp/ferry-demo --keep
            """)

    @Option(help: "Directory for the demo's files (default: a new temporary directory, removed afterwards).")
    var directory: String?

    @Flag(help: "Keep the demo's files.")
    var keep = false

    public init() {}

    public func run() async throws {
        try await DemoScript(directory: directory, keep: keep).run()
    }
}

/// The demo's steps, narrated for a person. Each step is in its own file
/// (DemoScript+Steps.swift); this one holds the plot.
struct DemoScript {
    var directory: String?
    var keep: Bool

    func say(_ text: String) { print(text) }

    func step(_ number: Int, _ title: String) {
        print("\n== Step \(number): \(title)")
    }

    func run() async throws {
        let dir = try directory ?? makeTemporaryDirectory()
        let removeAfterwards = directory == nil && !keep
        defer { if removeAfterwards { try? FileManager.default.removeItem(atPath: dir) } }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let files = DemoFiles(directory: dir)
        files.removeAll()

        say("ferry demo: moving a VM disk from ESXi to KVM the way the seed story should have gone.")
        say("Files live in \(dir)\(removeAfterwards ? " (removed at the end; --keep keeps them)" : "").")

        step(1, "the source disk, as ESXi stores it")
        try makeSource(files)
        step(2, "look inside before copying anything")
        try inspect(files)
        step(3, "what `dd | nc` would do")
        say("`dd if=/dev/sda bs=1M | nc HOST 9000` reads and sends all \(ByteCount.format(SampleDisk.size)), zeros included,")
        say("over an unauthenticated port, with no progress on the receiver and no way to tell a good copy from a bad one.")
        step(4, "convert on the way: VMDK to qcow2")
        let sourceDigest = try convert(files)
        step(5, "send it over the network, paired by a one-time code")
        try await transfer(files, expected: sourceDigest)
        step(6, "catch a damaged copy")
        try detectDamage(files, expected: sourceDigest)
        step(7, "fix the guest offline, in the copy: MergeIDE and friends")
        try fix(files)
        step(8, "configure the target: the Ganeti instance this guest needs")
        try plan(files)

        print("\nDemo complete: the disk was inspected, converted, sent encrypted and authenticated,")
        print("skipping its empty space, and verified end to end at every step; the copy was fixed to boot")
        print("on KVM's IDE controller and the target's configuration written, each choice with its reason.")
    }

    func allocated(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : 0
    }

    func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/ferry-demo.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ b in b.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw DiskError(.io, "/tmp", operation: "mkdtemp", "cannot make a temporary directory")
        }
        return String(cString: made)
    }
}

/// The paths the demo uses.
struct DemoFiles {
    var directory: String
    var vmx: String { directory + "/win2003.vmx" }
    var descriptor: String { directory + "/win2003.vmdk" }
    var flat: String { directory + "/win2003-flat.vmdk" }
    var qcow2: String { directory + "/win2003.qcow2" }
    var received: String { directory + "/vda.raw" }

    func removeAll() {
        for path in [vmx, descriptor, flat, qcow2, received, received + ".ferry-undo"] { try? FileManager.default.removeItem(atPath: path) }
    }
}
