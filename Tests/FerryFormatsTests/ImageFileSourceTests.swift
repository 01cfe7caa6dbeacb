import FerryBinary
import FerryDisk
import FerryTestSupport
import Testing

@testable import FerryFormats

/// `DiskImage.open(source:files:)`: an image whose files are not local, opened through an
/// `ImageFileSource` with the format readers unchanged, and confined to the source's tree.
@Suite struct ImageFileSourceTests {
    /// Files in memory, recording what was asked for.
    final class MemoryFiles: ImageFileSource {
        let files: [String: [UInt8]]
        init(_ files: [String: [UInt8]]) { self.files = files }
        func open(_ path: String) throws -> any BlockDevice {
            guard let bytes = files[path] else { throw DiskError(.notFound, path, operation: "open", "no such file") }
            return MemoryDevice(name: path, bytes: bytes, writable: false)
        }
    }

    @Test func descriptorAndFlatExtentOpenThroughTheSource() throws {
        let data = (0..<(8 * 512)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let files = MemoryFiles([
            "vm/vm.vmdk": Array(HostileImages.vmdkDescriptor(extent: "vm-flat.vmdk", sectors: 8).utf8),
            "vm/vm-flat.vmdk": data,
        ])
        let opened = try DiskImage.open(source: "vm/vm.vmdk", files: files)
        #expect(opened.chain.images.map { $0.format } == [ImageFormat.vmdk])
        #expect(opened.chain.images.first?.extents == ["vm/vm-flat.vmdk"])
        #expect(try opened.disk.readBytes(at: 0, count: data.count) == data)
    }

    @Test(arguments: ["../vm-flat.vmdk", "/etc/passwd", "a/../../x"])
    func namesLeavingTheTreeAreRefused(extent: String) throws {
        let files = MemoryFiles(["vm/vm.vmdk": Array(HostileImages.vmdkDescriptor(extent: extent, sectors: 8).utf8)])
        #expect {
            _ = try DiskImage.open(source: "vm/vm.vmdk", files: files)
        } throws: { error in
            (error as? FormatError)?.code == .notAllowed
        }
    }
}
