public import ArgumentParser
import FerryCopy
import FerryDisk
import Foundation

/// `ferry demo`: the whole migration in miniature, on a sample disk it makes.
public struct DemoCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the migration story in miniature on a generated sample VM disk, explaining each step.")

    @Option(help: "Directory for the demo's files (default: a new temporary directory, removed afterwards).")
    var directory: String?

    @Flag(help: "Keep the demo's files.")
    var keep = false

    public init() {}

    public func run() throws {
        do {
            try DemoScript(directory: directory, keep: keep).run()
        } catch {
            ErrorReporter.exit(with: error)
        }
    }
}

/// The demo's steps, narrated for a person.
struct DemoScript {
    var directory: String?
    var keep: Bool

    func say(_ text: String) { print(text) }

    func step(_ number: Int, _ title: String) {
        print("\n== Step \(number): \(title)")
    }

    func run() throws {
        let dir = try directory ?? makeTemporaryDirectory()
        let removeAfterwards = directory == nil && !keep
        defer { if removeAfterwards { try? FileManager.default.removeItem(atPath: dir) } }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let source = dir + "/win2003-source.raw"
        let copy = dir + "/win2003-copy.raw"
        for path in [source, copy] { try? FileManager.default.removeItem(atPath: path) }

        say("ferry demo: moving a VM disk the way the seed story should have gone.")
        say("Files live in \(dir)\(removeAfterwards ? " (removed at the end; --keep keeps them)" : "").")

        step(1, "the source disk")
        try SampleDisk.write(to: source)
        say("Made \(source): a \(ByteCount.format(SampleDisk.size)) VM disk with an MBR partition table")
        say("(one active partition at sector 63, as Windows 2003 lays it out) and \(ByteCount.format(dataBytes)) of data.")
        say("Space actually allocated on the host: \(ByteCount.format(allocated(source))). The rest was never written.")

        step(2, "what `dd | nc` would do")
        say("`dd if=/dev/sda bs=1M | nc HOST 9000` reads and sends all \(ByteCount.format(SampleDisk.size)), zeros included,")
        say("over an unauthenticated port, with no progress on the receiver and no way to tell a good copy from a bad one.")

        step(3, "copy with ferry")
        say("$ ferry copy \(source) \(copy)")
        var config = CopyConfiguration(source: source, target: copy)
        config.progress = .none
        let report = try DiskCopy.run(config, cancellation: Cancellation())
        let r = report.result
        say("Copied in \(String(format: "%.2f", r.seconds)) s: \(ByteCount.format(r.dataBytes)) of data written,")
        say("\(ByteCount.format(r.zeroBytes)) of empty space skipped without being read or written (holes stay holes).")
        say("The copy was written as a temporary file and renamed only after it reached stable storage.")
        say("Space allocated by the copy: \(ByteCount.format(allocated(copy))).")

        step(4, "verify end to end")
        let sourceDigest = try DiskChecksum.digest(of: source, cancellation: Cancellation())
        let copyDigest = try DiskChecksum.digest(of: copy, cancellation: Cancellation())
        say("$ ferry checksum \(source) \(copy)")
        say("\(sourceDigest.hex)  \(source)")
        say("\(copyDigest.hex)  \(copy)")
        guard let copied = r.digest, copied == sourceDigest, copyDigest == sourceDigest else {
            throw VerificationError(expected: sourceDigest, actual: copyDigest, what: copy)
        }
        say("Same digest, computed during the copy and again by re-reading both disks: the copy is exact.")
        say("The digest is blkhash (SHA-256 over 64 KiB blocks): holes are hashed without reading them,")
        say("and any image of the same disk, in any format, has the same digest.")

        step(5, "catch a damaged copy")
        let damage = try FileDevice.openForWriting(copy)
        try [UInt8](repeating: 0xFF, count: 1).withUnsafeBytes { try damage.write($0, at: (32 << 20) + 12345) }
        try damage.flush()
        let damagedDigest = try DiskChecksum.digest(of: copy, cancellation: Cancellation())
        say("Flipped one byte at offset \((32 << 20) + 12345) of the copy; its digest is now")
        say("\(damagedDigest.hex)")
        guard damagedDigest != sourceDigest else {
            throw VerificationError(expected: sourceDigest, actual: damagedDigest, what: "the damaged copy (should differ)")
        }
        say("A single changed byte changes the digest: `ferry copy --verify` would have failed with exit code 3.")

        print("\nDemo complete: the disk was copied, skipping its empty space, and verified end to end.")
    }

    var dataBytes: UInt64 { SampleDisk.regions.reduce(0) { $0 + UInt64($1.1) } + 512 }

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
