import FerryTestSupport
import Foundation
import Testing

/// The source policy and the target-format rule as a user meets them: real `ferry`
/// processes, exit codes, what lands on disk.
@Suite struct SourcePolicyCommandTests {
    /// A guest's raw disk whose first bytes are a qcow2 header naming a host file.
    struct Scene {
        let dir: TemporaryDirectory
        let hostDir: String
        let secretPath: String
        let secret: [UInt8]
        let hostile: String
        let hostileBytes: [UInt8]

        init() throws {
            dir = try TemporaryDirectory("ferry-policy-cli")
            hostDir = dir.file("host")
            try FileManager.default.createDirectory(atPath: hostDir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir.file("images"), withIntermediateDirectories: true)
            secretPath = hostDir + "/shadow"
            secret = try HostileImages.writeSecret(secretPath)
            hostile = dir.file("images/guest.img")
            hostileBytes = HostileImages.qcow2(backing: secretPath)
            try Data(hostileBytes).write(to: URL(fileURLWithPath: hostile))
        }

        func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
    }

    static func containsSecret(_ bytes: [UInt8], _ secret: [UInt8]) -> Bool {
        let needle = Array(secret[0..<32])
        guard bytes.count >= needle.count else { return false }
        return (0...(bytes.count - needle.count)).contains { Array(bytes[$0..<$0 + needle.count]) == needle }
    }

    @Test func copyRefusesABackingFileOutsideTheImageDirectory() throws {
        let scene = try Scene()
        let out = scene.dir.file("out.raw")
        let refused = try FerryExecutable.run(["copy", scene.hostile, out, "--progress", "none"])
        #expect(refused.status == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains(scene.secretPath) && refused.stderr.contains("--allow-backing"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1, "one clear line: \(refused.stderr)")
        #expect(!scene.exists(out) && !scene.exists(LocalTargetName.partial(out)))

        // --source-format raw: the guest's bytes, as they are.
        let raw = try FerryExecutable.run(["copy", scene.hostile, out, "--source-format", "raw", "--progress", "none"])
        #expect(raw.status == 0, "\(raw.stderr)")
        #expect(try scene.bytes(out) == scene.hostileBytes)
        #expect(raw.stderr.contains("ferry: source \(scene.hostile): raw (as --source-format says)"), "\(raw.stderr)")

        // --allow-backing DIR: the user vouches for the directory.
        let allowed = scene.dir.file("allowed.raw")
        let trusted = try FerryExecutable.run(["copy", scene.hostile, allowed, "--allow-backing", scene.hostDir, "--progress", "none"])
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect(try Array(scene.bytes(allowed)[0..<scene.secret.count]) == scene.secret)
        #expect(trusted.stderr.contains("qcow2, backing \(scene.secretPath) (raw)"), "\(trusted.stderr)")
    }

    @Test func checksumInspectAndSendFollowThePolicy() throws {
        let scene = try Scene()
        let sum = try FerryExecutable.run(["checksum", scene.hostile])
        #expect(sum.status == 65 && sum.stderr.contains("--allow-backing"), "\(sum.stderr)")
        #expect(sum.stdout.isEmpty)
        let rawSum = try FerryExecutable.run(["checksum", "--source-format", "raw", scene.hostile])
        #expect(rawSum.status == 0, "\(rawSum.stderr)")

        let inspect = try FerryExecutable.run(["inspect", scene.hostile])
        #expect(inspect.status != 0 && inspect.stderr.contains("--allow-backing"), "\(inspect.stderr)")
        let rawInspect = try FerryExecutable.run(["inspect", "--source-format", "raw", scene.hostile])
        #expect(rawInspect.status == 0, "\(rawInspect.stderr)")
        #expect(rawInspect.stdout.contains("Source: \(scene.hostile): raw (as --source-format says)"), "\(rawInspect.stdout)")

        // Nothing reaches standard output: the source fails to open before any byte is sent.
        let send = try FerryExecutable.run(["send", scene.hostile, "-", "--progress", "none"])
        #expect(send.status != 0 && send.stderr.contains("--allow-backing"), "\(send.stderr)")
        #expect(!Self.containsSecret(Array(send.stdout.utf8), scene.secret))
    }

    /// A guest's disk on a block device: read as raw, the header is only data.
    @Test func aBlockDeviceIsCopiedAsRaw() throws {
        guard Tools.isRoot else { Skip.because("loop device tests need root"); return }
        guard Tools.require("losetup") else { return }
        let scene = try Scene()
        let attached = try Tools.run("losetup", ["-f", "--show", scene.hostile])
        guard attached.status == 0 else {
            Skip.because("losetup could not attach a loop device here: \(attached.stderr)")
            return
        }
        let loop = attached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Tools.run("losetup", ["-d", loop]) }
        let out = scene.dir.file("device.raw")
        let copy = try FerryExecutable.run(["copy", loop, out, "--progress", "none"])
        #expect(copy.status == 0, "\(copy.stderr)")
        let copied = try scene.bytes(out)
        #expect(copied == scene.hostileBytes)
        #expect(!Self.containsSecret(copied, scene.secret))
        #expect(copy.stderr.contains("ferry: source \(loop): raw (block device, read as raw, never probed)"), "\(copy.stderr)")
    }

    @Test func aTargetNameFerryCannotWriteIsRefusedBeforeAnythingIsWritten() throws {
        let scene = try Scene()
        let source = scene.dir.file("plain.raw")
        try writeSparseFile(source, size: 1 << 20, layout: [(4096, [1, 2, 3])])
        for name in ["out.vmdk", "out.vhd", "out.vhdx", "out.ova"] {
            let target = scene.dir.file(name)
            let result = try FerryExecutable.run(["copy", source, target, "--progress", "none"])
            #expect(result.status != 0, "\(name): \(result.stderr)")
            #expect(result.stderr.contains("--target-format raw"), "\(result.stderr)")
            #expect(!scene.exists(target) && !scene.exists(LocalTargetName.partial(target)))
            let forced = try FerryExecutable.run(["copy", source, target, "--target-format", "raw", "--progress", "none"])
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try scene.bytes(target) == scene.bytes(source))
        }
    }
}
