import FerryDisk
import Testing

@testable import FerryFormats

/// URIs reach the scheme registered for them; paths never do.
@Suite struct DiskSchemeTests {
    /// A scheme that opens every URI as a small memory disk named after it.
    struct MemoryScheme: DiskScheme {
        let schemes = ["test-mem"]
        func openSource(_ uri: String, policy: SourcePolicy) throws -> OpenedSource {
            let disk = MemoryDevice(name: uri, bytes: [UInt8](repeating: 7, count: 4096))
            return OpenedSource(disk: disk, chain: SourceChain(images: [.init(role: .source, path: uri, format: .raw, reason: .named)]))
        }
    }

    @Test func aRegisteredSchemeOpensItsURIs() throws {
        DiskSchemes.register(MemoryScheme())
        let opened = try DiskImage.open(source: "TEST-MEM://host/disk")
        #expect(opened.disk.name == "TEST-MEM://host/disk")
        #expect(try opened.disk.readBytes(at: 0, count: 2) == [7, 7])
    }

    @Test func anUnknownSchemeIsRefusedNotTakenForAFileName() {
        #expect(DiskSchemes.uriScheme(of: "http://host/disk.vmdk") == "http")
        #expect(throws: DiskError.self) { try DiskImage.open(source: "http://host/disk.vmdk") }
    }

    @Test func pathsAreNotURIs() {
        #expect(DiskSchemes.uriScheme(of: "./a://b") == nil)
        #expect(DiskSchemes.uriScheme(of: "/tmp/x://y") == nil)
        #expect(DiskSchemes.uriScheme(of: "disk.vmdk") == nil)
        #expect(DiskSchemes.uriScheme(of: "1nbd://h") == nil)
    }
}
