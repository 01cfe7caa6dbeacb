import FerryBinary
import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@testable import FerryFormats

/// The source policy (qemu CVE-2008-2004 class): an image may name only files in its
/// own directory or one the user allows; raw is never probed.
@Suite struct SourcePolicyTests {
    /// An image directory and, beside it, a directory holding a "host secret".
    struct Scene {
        let root: TempDir
        let images: String
        let elsewhere: String
        let secretPath: String
        let secret: [UInt8]

        init() throws {
            root = try TempDir("ferry-policy")
            images = root.file("images")
            elsewhere = root.file("host")
            for dir in [images, elsewhere] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            secretPath = elsewhere + "/shadow"
            secret = try HostileImages.writeSecret(secretPath)
        }

        func image(_ name: String, _ bytes: [UInt8]) throws -> String {
            let path = images + "/" + name
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    static func refused(_ error: any Error, naming path: String) -> Bool {
        guard let error = error as? FormatError, error.code == .notAllowed else { return false }
        return error.description.contains(path) && error.description.contains("--allow-backing")
    }

    /// A raw file whose first bytes are a qcow2 header with an absolute backing path.
    @Test func anAbsoluteBackingPathOutsideIsRefused() throws {
        let scene = try Scene()
        let image = try scene.image("disk.img", HostileImages.qcow2(backing: scene.secretPath))
        #expect { _ = try DiskImage.openSource(image) } throws: { Self.refused($0, naming: scene.secretPath) }

        // --source-format raw: the file's own bytes, never probed, no backing opened.
        let raw = try DiskImage.open(source: image, policy: SourcePolicy(format: .raw))
        #expect(raw.disk.size == UInt64(2 * 65536))
        #expect(try raw.disk.readBytes(at: 0, count: 4) == [0x51, 0x46, 0x49, 0xFB])
        #expect(raw.chain.images.map(\.path) == [image])
        #expect(raw.chain.images.first?.reason == .named)

        // --allow-backing DIR: the user trusts that directory; the backing is read.
        let allowed = try DiskImage.open(source: image, policy: SourcePolicy(allowedDirectories: [scene.elsewhere]))
        #expect(try allowed.disk.readBytes(at: 0, count: 4096) == Array(scene.secret[0..<4096]))
        #expect(allowed.chain.images.map(\.role) == [.source, .backing])
        #expect(allowed.chain.description.contains("qcow2, backing \(scene.secretPath) (raw)"), "\(allowed.chain)")
    }

    @Test func dotDotEscapeIsRefused() throws {
        let scene = try Scene()
        let image = try scene.image("vm/disk.qcow2", HostileImages.qcow2(backing: "../../host/shadow"))
        #expect { _ = try DiskImage.openSource(image) } throws: { Self.refused($0, naming: "shadow") }
        // Up one level but still outside the image's own directory: refused too.
        _ = try scene.image("base.raw", [UInt8](repeating: 1, count: 1 << 20))
        let up = try scene.image("vm/up.qcow2", HostileImages.qcow2(backing: "../base.raw", backingFormat: "raw"))
        #expect { _ = try DiskImage.openSource(up) } throws: { Self.refused($0, naming: "base.raw") }
        #expect(throws: Never.self) {
            _ = try DiskImage.open(source: up, policy: SourcePolicy(allowedDirectories: [scene.images]))
        }
    }

    @Test func aSymbolicLinkOutIsRefused() throws {
        let scene = try Scene()
        try FileManager.default.createSymbolicLink(atPath: scene.images + "/base.raw", withDestinationPath: scene.secretPath)
        let image = try scene.image("disk.qcow2", HostileImages.qcow2(backing: "base.raw", backingFormat: "raw"))
        #expect { _ = try DiskImage.openSource(image) } throws: { Self.refused($0, naming: scene.secretPath) }
        // A directory symlinked out is the same escape.
        try FileManager.default.createSymbolicLink(atPath: scene.images + "/hostdir", withDestinationPath: scene.elsewhere)
        let viaDir = try scene.image("dir.qcow2", HostileImages.qcow2(backing: "hostdir/shadow"))
        #expect { _ = try DiskImage.openSource(viaDir) } throws: { Self.refused($0, naming: "shadow") }
    }

    /// An ordinary chain inside one directory still opens, and says what it opened.
    @Test func aBackingFileBesideTheImageOpens() throws {
        let scene = try Scene()
        var rng = SeededRandom(seed: 5)
        let base = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        _ = try scene.image("base.raw", base)
        let image = try scene.image("top.qcow2", HostileImages.qcow2(backing: "base.raw", backingFormat: "raw"))
        let opened = try DiskImage.open(source: image)
        #expect(try opened.disk.readBytes(at: 0, count: 1 << 20) == base)
        #expect(opened.chain.images.map(\.format) == [.qcow2, .raw])
        #expect(opened.chain.description == "\(image): qcow2, backing \(scene.images)/base.raw (raw)")
    }

    @Test func aVMDKExtentOutsideIsRefused() throws {
        let scene = try Scene()
        for extent in [scene.secretPath, "../host/shadow"] {
            let descriptor = try scene.image("disk.vmdk", Array(HostileImages.vmdkDescriptor(extent: extent, sectors: 128).utf8))
            #expect { _ = try DiskImage.openSource(descriptor) } throws: { Self.refused($0, naming: "shadow") }
            let allowed = try DiskImage.open(source: descriptor, policy: SourcePolicy(allowedDirectories: [scene.elsewhere]))
            #expect(try allowed.disk.readBytes(at: 0, count: 65536) == scene.secret)
            #expect(allowed.chain.description.hasSuffix("vmdk (1 extent)"), "\(allowed.chain)")
        }
    }

    /// The issue's own reproduction: `qemu-img create -f qcow2 -b /etc/shadow -F raw x 1M`
    /// (a temporary file stands in for /etc/shadow), in a raw file.
    @Test func qemuImgMadeHostileImageIsRefused() throws {
        guard Tool.haveQemuImg() else { return }
        let scene = try Scene()
        let image = scene.images + "/x.img"
        try Tool.qemu("create", "-q", "-f", "qcow2", "-b", scene.secretPath, "-F", "raw", image, "1M")
        #expect { _ = try DiskImage.openSource(image) } throws: { Self.refused($0, naming: scene.secretPath) }
        let raw = try DiskImage.open(source: image, policy: SourcePolicy(format: .raw))
        #expect(try raw.disk.readBytes(at: 0, count: 4) == [0x51, 0x46, 0x49, 0xFB])
    }

    /// Snapshot parents are named files too: a VMDK parentFileNameHint and a VHDX
    /// relative_path that lead out of the child's directory are refused.
    @Test func parentsOutsideAreRefused() throws {
        guard Tool.haveQemuImg() else { return }
        let scene = try Scene()
        let raw = scene.elsewhere + "/src.raw"
        try RawFixture.make(raw, size: 2 << 20, seed: 31, density: 0.7)
        try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", raw, scene.elsewhere + "/base.vmdk")
        let child = scene.images + "/child.vmdk"
        try Tool.qemu("create", "-q", "-f", "vmdk", "-b", scene.elsewhere + "/base.vmdk", "-F", "vmdk", child)
        #expect { _ = try DiskImage.openSource(child) } throws: { Self.refused($0, naming: "base.vmdk") }
        let allowed = try DiskImage.open(source: child, policy: SourcePolicy(allowedDirectories: [scene.elsewhere]))
        #expect(try Compare.firstDifference(allowed.disk, rawPath: raw) == nil)
        #expect(allowed.chain.images.map(\.role) == [.source, .parent])

        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, scene.elsewhere + "/parent.vhdx")
        let parentFile = try FileDevice.openForReading(scene.elsewhere + "/parent.vhdx")
        let headers = try [65536, 131072].map { try VHDX.Header(parsing: parentFile.readBytes(at: UInt64($0), count: 4096), baseOffset: UInt64($0)) }
        var expected = try FileDevice.openForReading(raw).readBytes(at: 0, count: 2 << 20)
        var rng = SeededRandom(seed: 31)
        let vhdx = VHDXDifferencingBuilder.build(
            size: 2 << 20, parentDataWriteGUID: headers.max(by: { $0.sequence < $1.sequence })?.dataWriteGUID ?? [],
            relativePath: "..\\host\\parent.vhdx", rng: &rng, expected: &expected)
        let vhdxChild = try scene.image("child.vhdx", vhdx)
        #expect { _ = try DiskImage.openSource(vhdxChild) } throws: { Self.refused($0, naming: "parent.vhdx") }
        let trusted = try DiskImage.open(source: vhdxChild, policy: SourcePolicy(allowedDirectories: [scene.elsewhere]))
        #expect(Bytes.equal(try trusted.disk.readBytes(at: 0, count: 2 << 20), expected))
    }

    @Test func anAllowedDirectoryThatDoesNotExistIsAnError() throws {
        let scene = try Scene()
        let image = try scene.image("disk.img", [UInt8](repeating: 0, count: 4096))
        #expect(throws: DiskError.self) {
            _ = try DiskImage.open(source: image, policy: SourcePolicy(allowedDirectories: [scene.root.file("nope")]))
        }
    }

    /// A block device is raw: a qcow2 header a guest wrote on its own disk is data.
    @Test func aLoopDeviceIsRawAndNeverProbed() throws {
        guard Tools.isRoot else { Skip.because("loop device tests need root"); return }
        guard Tools.require("losetup") else { return }
        let scene = try Scene()
        let bytes = HostileImages.qcow2(backing: scene.secretPath)
        let backingFile = scene.root.file("guest-disk.raw")
        try Data(bytes).write(to: URL(fileURLWithPath: backingFile))
        let attached = try Tools.run("losetup", ["-f", "--show", backingFile])
        guard attached.status == 0 else {
            Skip.because("losetup could not attach a loop device here: \(attached.stderr)")
            return
        }
        let loop = attached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Tools.run("losetup", ["-d", loop]) }
        #expect(try DiskImage.detect(loop) == .raw)
        let opened = try DiskImage.open(source: loop)
        #expect(opened.chain.images.map(\.reason) == [.blockDevice])
        #expect(opened.chain.description == "\(loop): raw (block device, read as raw, never probed)")
        #expect(try opened.disk.readBytes(at: 0, count: bytes.count) == bytes)
        // Named explicitly, it is read as qcow2, and the policy still holds.
        #expect { _ = try DiskImage.openSource(loop, format: .qcow2) } throws: { Self.refused($0, naming: scene.secretPath) }
    }
}
