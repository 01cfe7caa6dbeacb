import FerryBinary
import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@testable import FerryFormats

/// Corrupt variants made here from valid images: every one must fail with a
/// `FormatError` naming the file, the structure and (where it applies) the offset,
/// without crashing, hanging or allocating what the corrupt fields ask for.
@Suite struct HostileInputTests {
    /// Opens and reads all of `path`; returns the error it threw.
    func failure(_ path: String, format: ImageFormat? = nil) -> (any Error)? {
        do {
            let disk = try DiskImage.openSource(path, format: format)
            _ = try disk.extents(at: 0, length: disk.size)
            var at: UInt64 = 0
            while at < disk.size {
                let n = Int(min(disk.size - at, 1 << 20))
                _ = try disk.readBytes(at: at, count: n)
                at += UInt64(n)
            }
            return nil
        } catch {
            return error
        }
    }

    func expectFormatError(_ path: String, format: ImageFormat? = nil, _ code: FormatError.Code? = nil, structure: String? = nil,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        let error = failure(path, format: format)
        guard let error = error as? FormatError else {
            Issue.record("expected a FormatError, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(error.file != nil, "no file in \(error)", sourceLocation: sourceLocation)
        if let code { #expect(error.code == code, "\(error)", sourceLocation: sourceLocation) }
        if let structure { #expect(error.structure.contains(structure), "\(error)", sourceLocation: sourceLocation) }
        print("hostile \(URL(fileURLWithPath: path).lastPathComponent): \(error)")
    }

    func copy(_ from: String, _ to: String, patch: [(UInt64, [UInt8])] = [], truncate: UInt64? = nil) throws -> String {
        try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
        for (at, bytes) in patch { try RawFixture.poke(to, at: at, bytes) }
        if let truncate {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: to))
            try h.truncate(atOffset: truncate)
            try h.close()
        }
        return to
    }

    static func be32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    static func be64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    @Test func corruptQCOW2Headers() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 4 << 20, seed: 31, density: 0.9)
        let good = dir.file("good.qcow2")
        try Tool.qemu("convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536", raw, good)
        #expect(failure(good) == nil)
        let bytes = try FileDevice.openForReading(good).readBytes(at: 0, count: 65536 * 4)
        let l1Offset = bytes.bigEndian(UInt64.self, at: 40) ?? 0
        let l2Offset = (try FileDevice.openForReading(good).readBytes(at: l1Offset, count: 8)).bigEndian(UInt64.self, at: 0) ?? 0
        let l2 = l2Offset & QCOW2.offsetMask

        expectFormatError(try copy(good, dir.file("trunc.qcow2"), truncate: 40), .truncated, structure: "qcow2 header")
        expectFormatError(try copy(good, dir.file("magic.qcow2"), patch: [(0, [0x51, 0x46, 0x49, 0x00])]), format: .qcow2, .badMagic)
        expectFormatError(try copy(good, dir.file("version.qcow2"), patch: [(4, Self.be32(9))]), .unsupportedVersion)
        expectFormatError(try copy(good, dir.file("bits.qcow2"), patch: [(20, Self.be32(40))]), .outOfRange, structure: "qcow2 header")
        expectFormatError(try copy(good, dir.file("l1huge.qcow2"), patch: [(36, Self.be32(0xffff_fff0))]), .limitExceeded)
        expectFormatError(try copy(good, dir.file("size.qcow2"), patch: [(24, Self.be64(1 << 62))]), .inconsistent, structure: "qcow2 header")
        expectFormatError(try copy(good, dir.file("l1past.qcow2"), patch: [(40, Self.be64(1 << 40))]), .outOfRange, structure: "qcow2 L1")
        expectFormatError(try copy(good, dir.file("l2past.qcow2"), patch: [(l1Offset, Self.be64((1 << 40) | QCOW2.copiedFlag))]), .outOfRange,
                          structure: "qcow2 L2 table")
        expectFormatError(try copy(good, dir.file("l2unaligned.qcow2"), patch: [(l1Offset, Self.be64(l2 + 512))]), .inconsistent)
        expectFormatError(try copy(good, dir.file("datapast.qcow2"), patch: [(l2, Self.be64((1 << 40) | QCOW2.copiedFlag))]), .inconsistent,
                          structure: "qcow2 L2 table")
        expectFormatError(try copy(good, dir.file("incompat.qcow2"), patch: [(72, Self.be64(1 << 40))]), .unsupportedFeature)
        expectFormatError(try copy(good, dir.file("extdata.qcow2"), patch: [(72, Self.be64(1 << 2))]), .unsupportedFeature)
        expectFormatError(try copy(good, dir.file("crypt.qcow2"), patch: [(32, Self.be32(2))]), .unsupportedFeature)
        // A compressed entry pointing at garbage must fail to inflate, not crash.
        let garbage: UInt64 = QCOW2.compressedFlag | (UInt64(3) << 54) | 1000
        expectFormatError(try copy(good, dir.file("deflate.qcow2"), patch: [(l2, Self.be64(garbage))]), structure: "qcow2 compressed cluster")
    }

    @Test func backingChainCyclesAndDepth() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        // -u: do not open the backing file (it does not exist yet, or is the image itself).
        try Tool.qemu("create", "-q", "-f", "qcow2", "-u", "-b", "self.qcow2", "-F", "qcow2", dir.file("self.qcow2"), "1M")
        expectFormatError(dir.file("self.qcow2"), .cycle)
        try Tool.qemu("create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", dir.file("a.qcow2"), "1M")
        try Tool.qemu("create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", dir.file("b.qcow2"), "1M")
        expectFormatError(dir.file("a.qcow2"), .cycle)
        try Tool.qemu("create", "-q", "-f", "qcow2", dir.file("c0.qcow2"), "1M")
        for i in 1...FormatLimits.maxChainDepth {
            try Tool.qemu("create", "-q", "-f", "qcow2", "-u", "-b", "c\(i - 1).qcow2", "-F", "qcow2", dir.file("c\(i).qcow2"), "1M")
        }
        expectFormatError(dir.file("c\(FormatLimits.maxChainDepth).qcow2"), .limitExceeded)
        #expect(failure(dir.file("c\(FormatLimits.maxChainDepth - 1).qcow2")) == nil)
        // A missing backing file is a DiskError naming it.
        try Tool.qemu("create", "-q", "-f", "qcow2", "-u", "-b", "missing.qcow2", "-F", "qcow2", dir.file("orphan.qcow2"), "1M")
        let error = failure(dir.file("orphan.qcow2")) as? DiskError
        #expect(error?.code == .notFound && error?.name.hasSuffix("missing.qcow2") == true)
    }

    @Test func corruptVMDKSparseExtents() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 4 << 20, seed: 41, density: 0.9)
        let good = dir.file("good.vmdk")
        try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", raw, good)
        #expect(failure(good) == nil)
        let head = try FileDevice.openForReading(good).readBytes(at: 0, count: 512)
        let gdSector = head.littleEndian(UInt64.self, at: 56) ?? 0
        let gt0 = (try FileDevice.openForReading(good).readBytes(at: gdSector * 512, count: 4)).littleEndian(UInt32.self, at: 0) ?? 0

        expectFormatError(try copy(good, dir.file("trunc.vmdk"), truncate: 100), format: .vmdk)
        expectFormatError(try copy(good, dir.file("grain.vmdk"), patch: [(20, Self.le64(3))]), .outOfRange, structure: "VMDK sparse header")
        expectFormatError(try copy(good, dir.file("cap.vmdk"), patch: [(12, Self.le64(1 << 50))]), .limitExceeded)
        expectFormatError(try copy(good, dir.file("gdpast.vmdk"), patch: [(56, Self.le64(1 << 30))]), .outOfRange,
                          structure: "VMDK grain directory")
        expectFormatError(try copy(good, dir.file("gtpast.vmdk"), patch: [(gdSector * 512, Self.le32(0x7fff_ffff))]), .outOfRange,
                          structure: "VMDK grain table")
        expectFormatError(try copy(good, dir.file("grainpast.vmdk"), patch: [(UInt64(gt0) * 512, Self.le32(0x7fff_fff0))]), .outOfRange,
                          structure: "VMDK grain table")
        let stream = dir.file("stream.vmdk")
        try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, stream)
        expectFormatError(try copy(stream, dir.file("noFooter.vmdk"), patch: [(56, Self.le64(VMDK.gdAtEnd))]), .inconsistent,
                          structure: "VMDK stream footer")
    }

    @Test func corruptVMDKDescriptors() throws {
        let dir = try TempDir()
        func descriptor(_ name: String, _ body: String) throws -> String {
            try body.write(toFile: dir.file(name), atomically: true, encoding: .utf8)
            return dir.file(name)
        }
        _ = FileManager.default.createFile(atPath: dir.file("flat.bin"), contents: Data(count: 4096))
        expectFormatError(try descriptor("noversion.vmdk", "# Disk DescriptorFile\nRW 8 FLAT \"flat.bin\" 0\n"), format: .vmdk, .badMagic)
        expectFormatError(try descriptor("short.vmdk", "# Disk DescriptorFile\nversion=1\nRW 80 FLAT \"flat.bin\" 0\n"), .truncated)
        expectFormatError(try descriptor("overflow.vmdk", "# Disk DescriptorFile\nversion=1\nRW 8 FLAT \"flat.bin\" 36028797018963968\n"),
                          .outOfRange)
        expectFormatError(try descriptor("type.vmdk", "# Disk DescriptorFile\nversion=1\nRW 8 BOGUS \"flat.bin\"\n"), .inconsistent)
        expectFormatError(try descriptor("rdm.vmdk", "# Disk DescriptorFile\nversion=1\nRW 8 VMFSRDM \"flat.bin\"\n"), .unsupportedFeature)
        expectFormatError(try descriptor("empty.vmdk", "# Disk DescriptorFile\nversion=1\n"), .inconsistent)
        expectFormatError(try descriptor("orphan.vmdk", "# Disk DescriptorFile\nversion=1\nparentCID=12345678\nRW 8 FLAT \"flat.bin\" 0\n"),
                          .inconsistent)
        // Two snapshots naming each other as parents.
        _ = try descriptor("p.vmdk", "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=2\nparentFileNameHint=\"q.vmdk\"\nRW 8 FLAT \"flat.bin\" 0\n")
        _ = try descriptor("q.vmdk", "# Disk DescriptorFile\nversion=1\nCID=2\nparentCID=1\nparentFileNameHint=\"p.vmdk\"\nRW 8 FLAT \"flat.bin\" 0\n")
        expectFormatError(dir.file("p.vmdk"), .cycle)
    }

    @Test func corruptVHDAndVHDX() throws {
        guard Tool.haveQemuImg() else { return }
        let dir = try TempDir()
        let raw = dir.file("src.raw")
        try RawFixture.make(raw, size: 5 << 20, seed: 51, density: 0.9)
        let vhd = dir.file("good.vhd")
        try Tool.qemu("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", raw, vhd)
        #expect(failure(vhd) == nil)
        let size = try FileDevice.openForReading(vhd).size
        // Both footers damaged: checksum mismatch.
        expectFormatError(try copy(vhd, dir.file("sum.vhd"), patch: [(size - 512 + 40, [1]), (40, [1])]), format: .vhd, .badChecksum)
        // BAT entry 0 far past the end of the file (the BAT sits at 1536 in qemu's layout).
        expectFormatError(try copy(vhd, dir.file("bat.vhd"), patch: [(1536, Self.be32(0x7fff_0000))]), .outOfRange)

        let vhdx = dir.file("good.vhdx")
        try Tool.qemu("convert", "-f", "raw", "-O", "vhdx", raw, vhdx)
        #expect(failure(vhdx) == nil)
        // Corrupt both headers: CRC-32C fails.
        expectFormatError(try copy(vhdx, dir.file("crc.vhdx"), patch: [(65536 + 100, [1]), (131072 + 100, [1])]), .badChecksum)
        // A log GUID whose log holds no valid entry: nothing to replay, the image opens.
        let header = try FileDevice.openForReading(vhdx).readBytes(at: 65536, count: 4096)
        let other = try FileDevice.openForReading(vhdx).readBytes(at: 131072, count: 4096)
        var dirty = header
        dirty[48] = 0x42
        // Make it the current header: a sequence number above both.
        let sequence = max(header.littleEndian(UInt64.self, at: 8) ?? 0, other.littleEndian(UInt64.self, at: 8) ?? 0) + 1
        dirty.replaceSubrange(8..<16, with: withUnsafeBytes(of: sequence.littleEndian) { Array($0) })
        let crc = VHDX.crc32c(dirty, zeroing: 4)
        dirty.replaceSubrange(4..<8, with: withUnsafeBytes(of: crc.littleEndian) { Array($0) })
        #expect(failure(try copy(vhdx, dir.file("log.vhdx"), patch: [(65536, dirty)])) == nil)
        expectFormatError(try copy(vhdx, dir.file("trunc.vhdx"), truncate: 70000), format: .vhdx)
    }

    @Test func corruptSnapshotExtents() throws {
        let dir = try TempDir()
        var rng = SeededRandom(seed: 5)
        let capacity: UInt64 = 8192
        _ = FileManager.default.createFile(atPath: dir.file("flat.bin"), contents: Data(count: Int(capacity * 512)))
        func descriptor(_ type: String, _ file: String) throws -> String {
            let text = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\nRW \(capacity) \(type) \"\(file)\"\n"
            try text.write(toFile: dir.file("d-\(file)"), atomically: true, encoding: .utf8)
            return dir.file("d-\(file)")
        }
        // seSparse: a grain directory entry that is neither 0 nor "allocated".
        var se = VMDKSnapshotExtent.seSparse(capacity: capacity, rng: &rng)
        let gdAt = 4 * 512
        se.replaceSubrange(gdAt..<gdAt + 8, with: Self.le64(0x2000_0000_0000_0001))
        try Data(se).write(to: URL(fileURLWithPath: dir.file("a-sesparse.vmdk")))
        expectFormatError(try descriptor("SESPARSE", "a-sesparse.vmdk"), .inconsistent, structure: "seSparse grain directory")
        // seSparse: a grain table entry of an unknown type.
        var se2 = VMDKSnapshotExtent.seSparse(capacity: capacity, rng: &rng)
        let gtAt = 5 * 512
        se2.replaceSubrange(gtAt..<gtAt + 8, with: Self.le64(0x7000_0000_0000_0000))
        try Data(se2).write(to: URL(fileURLWithPath: dir.file("b-sesparse.vmdk")))
        expectFormatError(try descriptor("SESPARSE", "b-sesparse.vmdk"), .inconsistent, structure: "seSparse grain table")
        // COWD: grain directory entry count too small for the capacity, and a GT past EOF.
        var cowd = VMDKSnapshotExtent.cowd(capacity: capacity, rng: &rng)
        cowd.replaceSubrange(24..<28, with: Self.le32(0))
        try Data(cowd).write(to: URL(fileURLWithPath: dir.file("c-delta.vmdk")))
        expectFormatError(try descriptor("VMFSSPARSE", "c-delta.vmdk"), .inconsistent, structure: "COWD")
        var cowd2 = VMDKSnapshotExtent.cowd(capacity: capacity, rng: &rng)
        cowd2.replaceSubrange(2048..<2052, with: Self.le32(0x00ff_ffff))
        try Data(cowd2).write(to: URL(fileURLWithPath: dir.file("e-delta.vmdk")))
        expectFormatError(try descriptor("VMFSSPARSE", "e-delta.vmdk"), .outOfRange)
    }
}

