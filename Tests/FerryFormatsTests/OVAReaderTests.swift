import FerryBinary
import FerryDisk
import Foundation
import FerryTestSupport
import Testing

@testable import FerryFormats

/// OVA archives packed with tar around qemu-made streamOptimized disks, read in place.
@Suite struct OVAReaderTests {
    func ovf(_ disks: [String]) -> String {
        let files = disks.enumerated().map { "<File ovf:href=\"\($0.element)\" ovf:id=\"file\($0.offset)\"/>" }
        return "<?xml version=\"1.0\"?>\n<Envelope><References>\(files.joined())</References></Envelope>\n"
    }

    @Test func singleAndMultiDiskArchives() throws {
        guard Tool.haveQemuImg() else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") || FileManager.default.isExecutableFile(atPath: "/bin/tar") else {
            Skip.because("tar not installed")
            return
        }
        let tar = FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") ? "/usr/bin/tar" : "/bin/tar"
        let dir = try TempDir()
        var oracles: [String: String] = [:]
        for (i, name) in ["vm-disk1.vmdk", "vm-disk2.vmdk"].enumerated() {
            let raw = dir.file("src\(i).raw")
            try RawFixture.make(raw, size: 6 * 1024 * 1024 + 512, seed: UInt64(60 + i))
            try Tool.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, dir.file(name))
            oracles[name] = raw
        }
        try ovf(["vm-disk1.vmdk"]).write(toFile: dir.file("vm.ovf"), atomically: true, encoding: .utf8)
        try Tool.run(tar, ["--format=ustar", "-C", dir.path, "-cf", dir.file("one.ova"), "vm.ovf", "vm-disk1.vmdk"])
        #expect(try DiskImage.detect(dir.file("one.ova")) == .ova)
        let one = try DiskImage.openSource(dir.file("one.ova"))
        #expect(try Compare.firstDifference(one, rawPath: oracles["vm-disk1.vmdk"] ?? "") == nil)
        #expect(try one.extents(at: 0, length: one.size).contains { $0.kind == .hole })

        // The OVF lists disk2 first: that is the order ovaDisks reports.
        try ovf(["vm-disk2.vmdk", "vm-disk1.vmdk"]).write(toFile: dir.file("vm.ovf"), atomically: true, encoding: .utf8)
        try Tool.run(tar, ["--format=pax", "-C", dir.path, "-cf", dir.file("two.ova"), "vm.ovf", "vm-disk1.vmdk", "vm-disk2.vmdk"])
        #expect(try DiskImage.ovaDisks(dir.file("two.ova")) == ["vm-disk2.vmdk", "vm-disk1.vmdk"])
        #expect(throws: FormatError.self) { try DiskImage.openSource(dir.file("two.ova")) }
        for name in ["vm-disk1.vmdk", "vm-disk2.vmdk"] {
            let disk = try DiskImage.openOVADisk(dir.file("two.ova"), member: name)
            #expect(try Compare.firstDifference(disk, rawPath: oracles[name] ?? "") == nil, "\(name)")
        }
        // A truncated archive fails with a FormatError naming the tar header.
        let cut = dir.file("cut.ova")
        try FileManager.default.copyItem(atPath: dir.file("one.ova"), toPath: cut)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: cut))
        try h.truncate(atOffset: 4096)
        try h.close()
        #expect { _ = try DiskImage.openSource(cut, format: .ova) } throws: { ($0 as? FormatError)?.structure == OVA.structure }
    }
}

/// An OVA whose OVF capacity disagrees with its disk used to be copied silently.
@Suite struct OVACapacityTests {
    static let tar = FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") ? "/usr/bin/tar" : "/bin/tar"

    /// An OVA of one raw 1 MiB disk whose OVF declares `capacity` in `units`.
    func archive(_ dir: TempDir, capacity: String, units: String?) throws -> String {
        let ovf = """
            <?xml version="1.0"?>
            <Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
              <References><File ovf:href="disk.img" ovf:id="file1" ovf:size="1048576"/></References>
              <DiskSection><Info>disks</Info>
                <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="\(capacity)"\(units.map { " ovf:capacityAllocationUnits=\"\($0)\"" } ?? "")/>
              </DiskSection>
            </Envelope>
            """
        try ovf.write(toFile: dir.file("vm.ovf"), atomically: true, encoding: .utf8)
        try RawFixture.make(dir.file("disk.img"), size: 1 << 20, seed: 12)
        let name = "vm-\(capacity)-\(units?.filter(\.isNumber) ?? "b").ova"
        try Tool.run(Self.tar, ["--format=ustar", "-C", dir.path, "-cf", dir.file(name), "vm.ovf", "disk.img"])
        return dir.file(name)
    }

    @Test func aDiskSmallerThanItsCapacityIsRefused() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.tar) else { Skip.because("tar not installed"); return }
        let dir = try TempDir()
        for (capacity, units) in [("2", "byte * 2^20"), ("2097152", nil), ("1049088", "byte")] {
            let ova = try archive(dir, capacity: capacity, units: units)
            #expect {
                _ = try DiskImage.openSource(ova)
            } throws: { error in
                guard let error = error as? FormatError else { return false }
                return error.field == "capacity" && error.description.contains("truncated")
            }
        }
    }

    @Test func roundingAndLargerDisksWarnAndCopyEverything() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.tar) else { Skip.because("tar not installed"); return }
        let dir = try TempDir()
        // 1 GiB declared in GiB units for a 1 MiB disk: less than one unit short, the exporter rounded.
        let rounded = try DiskImage.open(source: try archive(dir, capacity: "1", units: "byte * 2^30"))
        #expect(rounded.disk.size == 1 << 20)
        #expect(rounded.chain.warnings.count == 1 && rounded.chain.warnings[0].contains("rounded"), "\(rounded.chain.warnings)")
        let larger = try DiskImage.open(source: try archive(dir, capacity: "524288", units: nil))
        #expect(larger.disk.size == 1 << 20)
        #expect(larger.chain.warnings.count == 1 && larger.chain.warnings[0].contains("more than"), "\(larger.chain.warnings)")
        let exact = try DiskImage.open(source: try archive(dir, capacity: "1", units: "byte * 2^20"))
        #expect(exact.chain.warnings.isEmpty)
        #expect(try Compare.firstDifference(exact.disk, rawPath: dir.file("disk.img")) == nil)
        // A capacity ferry cannot read (an OVF property) is not checked.
        let property = try DiskImage.open(source: try archive(dir, capacity: "${disk.size}", units: nil))
        #expect(property.chain.warnings.isEmpty)
    }
}
