import FerryBinary
import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@testable import FerryFormats

/// ESXi snapshot extents that no Debian tool creates, built here and judged by qemu-img
/// (which reads seSparse): allocated, zero, unmapped and unallocated grains over a parent.
@Suite struct VMDKSnapshotTests {
    /// Builds a flat parent from seeded data and a child descriptor of `type` over
    /// `extent`, then checks ferry against qemu-img reading the same chain.
    func checkChild(type: String, createType: String, file: String, bytes: (UInt64, inout SeededRandom) -> [UInt8],
                    seed: UInt64) throws -> TempDir {
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        let capacity: UInt64 = 40 * 2048 + 8 * 3  // sectors: not a whole number of grain tables
        try RawFixture.make(raw, size: capacity * 512, seed: seed, density: 0.9)
        try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat", raw, dir.file("parent.vmdk"))
        let parentText = try String(contentsOfFile: dir.file("parent.vmdk"), encoding: .utf8)
        let cid = parentText.split(separator: "\n").first(where: { $0.hasPrefix("CID=") })?.dropFirst(4) ?? ""
        var rng = SeededRandom(seed: seed)
        print("vmdk \(type): seed \(seed)")
        try Data(bytes(capacity, &rng)).write(to: URL(fileURLWithPath: dir.file(file)))
        let descriptor = VMDKSnapshotExtent.childDescriptor(
            capacity: capacity, type: type, createType: createType, file: file, parentCID: cid,
            hint: "/vmfs/volumes/5f1e-datastore/vm/parent.vmdk")
        try descriptor.write(toFile: dir.file("child.vmdk"), atomically: true, encoding: .utf8)
        // qemu does not resolve ESXi absolute hints by base name: give it the relative one.
        let forQemu = descriptor.replacingOccurrences(of: "/vmfs/volumes/5f1e-datastore/vm/", with: "")
        try forQemu.write(toFile: dir.file("child-q.vmdk"), atomically: true, encoding: .utf8)
        let oracle = dir.file("oracle.raw")
        try Tool.qemu("convert", "-f", "vmdk", "-O", "raw", dir.file("child-q.vmdk"), oracle)
        let disk = try DiskImage.openSource(dir.file("child.vmdk"))
        #expect(try Compare.firstDifference(disk, rawPath: oracle) == nil)
        #expect(try Compare.concurrentReadsAgree(disk, rawPath: oracle))
        return dir
    }

    @Test func cowdChildOverFlatParent() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try checkChild(type: "VMFSSPARSE", createType: "vmfsSparse", file: "child-delta.vmdk",
                                 bytes: { VMDKSnapshotExtent.cowd(capacity: $0, rng: &$1) }, seed: 71)
        // A dirty redo log is refused.
        var dirty = try Data(contentsOf: URL(fileURLWithPath: dir.file("child-delta.vmdk"))).map { $0 }
        dirty[1648] = 1
        try Data(dirty).write(to: URL(fileURLWithPath: dir.file("child-delta.vmdk")))
        #expect { _ = try DiskImage.openSource(dir.file("child.vmdk")) } throws: { ($0 as? FormatError)?.field == "dirty" }
    }

    @Test func seSparseChildOverFlatParent() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try checkChild(type: "SESPARSE", createType: "seSparse", file: "child-sesparse.vmdk",
                                 bytes: { VMDKSnapshotExtent.seSparse(capacity: $0, rng: &$1) }, seed: 70)
        let disk = try DiskImage.openSource(dir.file("child.vmdk"))
        let kinds = Set(try disk.extents(at: 0, length: disk.size).map(\.kind))
        #expect(kinds == [.data, .zero], "\(kinds)")  // zero/unmapped grains, the rest from the flat parent
        // A dirty journal is refused.
        var rng = SeededRandom(seed: 1)
        var dirty = VMDKSnapshotExtent.seSparse(capacity: 40 * 2048 + 24, rng: &rng)
        dirty[512 + 24] = 1
        try Data(dirty).write(to: URL(fileURLWithPath: dir.file("child-sesparse.vmdk")))
        #expect { _ = try DiskImage.openSource(dir.file("child.vmdk")) } throws: { ($0 as? FormatError)?.field == "replay_journal" }
    }
}
