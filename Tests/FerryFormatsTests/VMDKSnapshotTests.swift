import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// ESXi snapshot extents that no Debian tool creates, built here and judged by qemu-img
/// (which reads seSparse): allocated, zero, unmapped and unallocated grains over a parent.
@Suite struct VMDKSnapshotTests {
    static func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// An seSparse extent over `capacity` sectors: returns the file bytes.
    static func seSparse(capacity: UInt64, rng: inout SeededRandom) -> [UInt8] {
        let grains = capacity / 8
        let tables = (grains + 4095) / 4096
        let gdSectors = (tables * 8 + 511) / 512
        let gtStart = 4 + gdSectors
        let grainsStart = gtStart + tables * 64 + 2
        var gts = [UInt64](repeating: 0, count: Int(tables * 4096))
        var data: [UInt8] = []
        for g in 0..<Int(grains) {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1, 2:
                let cluster = UInt64(data.count / 4096)
                gts[g] = (3 << 60) | ((cluster & 0xfff) << 48) | (cluster >> 12)
                let fill = UInt8.random(in: 1...255, using: &rng)
                data += (0..<4096).map { UInt8(truncatingIfNeeded: Int(fill) &+ $0) }
            case 3: gts[g] = 2 << 60  // zero grain
            case 4: gts[g] = 1 << 60  // unmapped
            default: break  // unallocated: the parent shows through
            }
        }
        var header = ByteWriter()
        for v: UInt64 in [0xcafe_babe, 0x2_0000_0001, capacity, 8, 64, 0, 0, 0, 0, 0,
                          1, 1, 2, 1, 3, 1, 4, gdSectors, gtStart, tables * 64, gtStart + tables * 64, 1,
                          gtStart + tables * 64 + 1, 1, grainsStart, UInt64(data.count / 512)] {
            header.writeLittleEndian(v)
        }
        header.writeZeros(512 - header.bytes.count)
        var out = header.bytes
        var volatile = ByteWriter()
        volatile.writeLittleEndian(UInt64(0xcafe_cafe))
        volatile.writeLittleEndian(UInt64(0))
        volatile.writeLittleEndian(UInt64(1))
        volatile.writeLittleEndian(UInt64(0))  // replay_journal
        volatile.writeZeros(512 - 32)
        out += volatile.bytes + [UInt8](repeating: 0, count: 1024)
        var gd = (0..<tables).flatMap { le64((0x1000_0000 << 32) | $0) }
        gd += [UInt8](repeating: 0, count: Int(gdSectors * 512) - gd.count)
        out += gd
        out += gts.flatMap { le64($0) }
        out += [UInt8](repeating: 0, count: 1024)
        return out + data
    }

    /// A COWD (vmfsSparse) redo log over `capacity` sectors with 4 KiB grains.
    static func cowd(capacity: UInt64, rng: inout SeededRandom) -> [UInt8] {
        let grain: UInt64 = 8
        let grains = (capacity + grain - 1) / grain
        let tables = (grains + 4095) / 4096
        let gtStart: UInt64 = 4 + (tables * 4 + 511) / 512
        var gts = [UInt32](repeating: 0, count: Int(tables * 4096))
        var data: [UInt8] = []
        let dataStart = gtStart + tables * 32
        for g in 0..<Int(grains) where Int.random(in: 0..<3, using: &rng) == 0 {
            gts[g] = UInt32(dataStart + UInt64(data.count / 512))
            let fill = UInt8.random(in: 1...255, using: &rng)
            data += (0..<4096).map { UInt8(truncatingIfNeeded: Int(fill) ^ $0) }
        }
        var w = ByteWriter()
        w.write(bytes: Array("COWD".utf8))
        for v: UInt32 in [1, 3, UInt32(capacity), UInt32(grain), 4, UInt32(tables), UInt32(dataStart + UInt64(data.count / 512))] {
            w.writeLittleEndian(v)
        }
        w.writeZeros(2048 - w.bytes.count)
        for t in 0..<tables { w.writeLittleEndian(UInt32(gtStart + t * 32)) }
        w.writeZeros(Int(gtStart * 512) - w.bytes.count)
        for e in gts { w.writeLittleEndian(e) }
        return w.bytes + data
    }

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
        let descriptor = """
            # Disk DescriptorFile
            version=1
            encoding="UTF-8"
            CID=abcdef01
            parentCID=\(cid)
            createType="\(createType)"
            parentFileNameHint="/vmfs/volumes/5f1e-datastore/vm/parent.vmdk"

            # Extent description
            RW \(capacity) \(type) "\(file)"

            """
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
                                 bytes: { Self.cowd(capacity: $0, rng: &$1) }, seed: 71)
        // A dirty redo log is refused.
        var dirty = try Data(contentsOf: URL(fileURLWithPath: dir.file("child-delta.vmdk"))).map { $0 }
        dirty[1648] = 1
        try Data(dirty).write(to: URL(fileURLWithPath: dir.file("child-delta.vmdk")))
        #expect { _ = try DiskImage.openSource(dir.file("child.vmdk")) } throws: { ($0 as? FormatError)?.field == "dirty" }
    }

    @Test func seSparseChildOverFlatParent() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try checkChild(type: "SESPARSE", createType: "seSparse", file: "child-sesparse.vmdk",
                                 bytes: { Self.seSparse(capacity: $0, rng: &$1) }, seed: 70)
        let disk = try DiskImage.openSource(dir.file("child.vmdk"))
        let kinds = Set(try disk.extents(at: 0, length: disk.size).map(\.kind))
        #expect(kinds == [.data, .zero], "\(kinds)")  // zero/unmapped grains, the rest from the flat parent
        // A dirty journal is refused.
        var rng = SeededRandom(seed: 1)
        var dirty = Self.seSparse(capacity: 40 * 2048 + 24, rng: &rng)
        dirty[512 + 24] = 1
        try Data(dirty).write(to: URL(fileURLWithPath: dir.file("child-sesparse.vmdk")))
        #expect { _ = try DiskImage.openSource(dir.file("child.vmdk")) } throws: { ($0 as? FormatError)?.field == "replay_journal" }
    }
}
