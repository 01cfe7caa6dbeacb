import FerryCopy
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// The one rule for the format of a target: the name is honoured or refused, never ignored.
@Suite struct TargetFormatTests {
    @Test(arguments: [
        ("out.qcow2", ImageFormat.qcow2), ("/x/OUT.QCOW2", .qcow2), ("a.qcow", .qcow2),
        ("out.raw", .raw), ("out.img", .raw), ("/dev/sdb", .raw), ("-", .raw), ("null:", .raw),
        ("dir.vmdk/disk", .raw), (".vmdk", .raw),
    ])
    func namesFerryCanWriteGetTheirFormat(path: String, expected: ImageFormat) throws {
        #expect(try DiskImage.targetFormat(forPath: path) == expected)
    }

    @Test(arguments: ["out.vmdk", "out.VHD", "out.vhdx", "out.avhdx", "vm.ova", "/a/b/c.ovf"])
    func namesFerryCannotWriteAreRefused(path: String) throws {
        #expect {
            _ = try DiskImage.targetFormat(forPath: path)
        } throws: { error in
            guard let error = error as? DiskError else { return false }
            return error.code == .unsupported && error.name == path && error.detail.contains("--target-format raw")
        }
        // An explicit raw overrides the name, as the refusal says.
        #expect(try DiskImage.targetFormat(forPath: path, explicit: .raw) == .raw)
        #expect(try DiskImage.targetFormat(forPath: path, explicit: .qcow2) == .qcow2)
    }

    @Test(arguments: [ImageFormat.vmdk, .vhd, .vhdx, .ova])
    func explicitFormatsFerryCannotWriteAreRefused(format: ImageFormat) throws {
        #expect(throws: DiskError.self) { try DiskImage.targetFormat(forPath: "out.raw", explicit: format) }
    }

    /// `copy SRC out.vmdk` used to exit 0 with raw bytes under a .vmdk name.
    @Test(arguments: ["out.vmdk", "out.vhd", "out.vhdx", "out.ova"])
    func copyRefusesAnUnwritableNameAndWritesNothing(name: String) throws {
        let dir = try TempDir()
        let source = dir.file("src.raw")
        try RawFixture.make(source, size: 1 << 20, seed: 3)
        var config = CopyConfiguration(source: source, target: dir.file(name))
        config.progress = .none
        #expect(throws: DiskError.self) { try DiskCopy.run(config, cancellation: Cancellation()) }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(left == ["src.raw"], "nothing may be written for a refused target: \(left)")

        config.targetFormat = .raw
        _ = try DiskCopy.run(config, cancellation: Cancellation())
        #expect(try Compare.firstDifference(FileDevice.openForReading(dir.file(name)), rawPath: source) == nil)
    }
}
