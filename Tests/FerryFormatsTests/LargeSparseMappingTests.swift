import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// The benchmark-friendly property: mapping a 100 GiB virtual disk with 1 % of its
/// clusters allocated reads each second-level table once (no syscall per cluster)
/// and finishes quickly.
@Suite struct LargeSparseMappingTests {
    /// Counts reads reaching the file.
    final class CountingDevice: BlockDevice {
        let inner: any BlockDevice
        let reads = Failures()
        var name: String { inner.name }
        var size: UInt64 { inner.size }
        var logicalSectorSize: Int { inner.logicalSectorSize }
        var capabilities: DiskCapabilities { inner.capabilities }
        init(_ inner: any BlockDevice) { self.inner = inner }
        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
            reads.add()
            try inner.read(into: buffer, at: offset)
        }
    }

    static let virtualSize: UInt64 = 100 << 30
    static let cluster: UInt64 = 64 << 10

    /// A sparse raw file with 4 KiB of data in every 100th 64 KiB cluster.
    func makeRaw(_ path: String) throws -> Int {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: Self.virtualSize)
        var count = 0
        var at: UInt64 = 0
        let block = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
        while at < Self.virtualSize {
            try handle.seek(toOffset: at)
            try handle.write(contentsOf: block)
            count += 1
            at += 100 * Self.cluster
        }
        return count
    }

    func measure(_ image: String, format: ImageFormat, clusters: Int) throws {
        let counting = CountingDevice(try FileDevice.openForReading(image))
        let file = HostFile(path: image, device: counting)
        var chain = ChainGuard()
        let disk: MappedDisk = format == .qcow2 ? try QCOW2.open(file, chain: &chain) : try VMDK.open(file, chain: &chain)
        let opened = counting.reads.count
        // The time this takes is measured by Benchmarks/formats.sh (c), not asserted here.
        let extents = try disk.extents(at: 0, length: disk.size)
        let tableReads = counting.reads.count - opened
        let data = extents.filter { $0.kind == .data }
        print("large sparse \(format): \(extents.count) extents, \(data.count) data runs, \(tableReads) table reads")
        #expect(data.count == clusters)
        // qcow2: one read per L2 table (200 for 100 GiB at 64 KiB clusters);
        // VMDK: one per grain table (3200 for 100 GiB at 32 MiB per table).
        #expect(tableReads <= (format == .qcow2 ? 200 : 3200))
        // A second pass is served from the table cache.
        _ = try disk.extents(at: 0, length: disk.size)
        #expect(counting.reads.count - opened == tableReads)
    }

    @Test func hundredGiBOnePercentAllocated() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("sparse.raw")
        let clusters = try makeRaw(raw)
        let qcow2 = dir.file("sparse.qcow2")
        try Tool.qemu("convert", "-f", "raw", "-O", "qcow2", raw, qcow2)
        try measure(qcow2, format: .qcow2, clusters: clusters)
        try FileManager.default.removeItem(atPath: qcow2)
        let vmdk = dir.file("sparse.vmdk")
        try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", raw, vmdk)
        try measure(vmdk, format: .vmdk, clusters: clusters)
    }
}
