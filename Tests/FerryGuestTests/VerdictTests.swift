import FerryDisk
@testable import FerryGuest
import Testing

/// Verdict rules from facts alone (no disk images), plus blockers seen in synthetic disks.
@Suite struct VerdictTests {
    static func windows(version: String, hal: String? = "acpiapic_mp", driverDatabase: Bool = false) -> WindowsReport {
        let desc = hal.map(HAL.describe)
        return WindowsReport(
            partition: 1, systemRoot: "\\WINNT", version: version, hal: hal, halFile: desc?.file,
            halMultiprocessor: desc?.multiprocessor, halACPI: desc?.acpi, controlSet: "ControlSet001",
            drivers: [], criticalDevices: [], rtcLocalTime: true, vmwareTools: false, driverDatabase: driverDatabase,
            hibernated: false, volumeDirty: false, systemHiveDirty: false)
    }

    static func judge(_ w: WindowsReport, table: String = "mbr") -> [Verdict] {
        let report = InspectionReport(partitionTable: table, diskSize: 1 << 30, sectorSize: 512, bootCode: true, wholeDisk: true, windows: w)
        return Verdicts.judge(report, dynamicDisk: false, bitlocker: [])
    }

    @Test func windows2000HasNoVirtioDrivers() {
        let v = Self.judge(Self.windows(version: "5.0"))
        #expect(v.first { $0.id == "boot-virtio-blk" }?.fix.contains("Windows 2000") == true)
        #expect(v.first { $0.id == "cpu-model" }?.ok == false)
        #expect(v.first { $0.id == "boot-ide" }?.ok == false)
    }

    @Test func windows8UsesDriverDatabase() {
        let v = Self.judge(Self.windows(version: "6.3", hal: "acpiapic", driverDatabase: true))
        #expect(v.first { $0.id == "boot-ide" }?.ok == true)
        #expect(v.first { $0.id == "cpu-model" }?.ok == true)
    }

    @Test func nonACPIHALAndGPTOnXP() {
        let v = Self.judge(Self.windows(version: "5.1", hal: "mps_up"), table: "gpt")
        #expect(v.first { $0.id == "acpi" } != nil)
        #expect(v.first { $0.id == "vcpus" }?.ok == false)
        #expect(v.first { $0.id == "gpt-legacy-windows" }?.severity == .blocker)
    }

    @Test func halTable() {
        #expect(HAL.describe("ACPIAPIC_MP").file == "halmacpi.dll")
        #expect(HAL.describe("acpipic_up").multiprocessor == false)
        #expect(HAL.describe("e_isa_up").acpi == false)
        #expect(HAL.describe("something").file == nil)
    }

    @Test func driverPaths() {
        #expect(DriverPath.resolve(nil, service: "atapi", systemRoot: "WINDOWS") == "/WINDOWS/System32/drivers/atapi.sys")
        #expect(DriverPath.resolve("System32\\DRIVERS\\x.sys", service: "x", systemRoot: "WINNT") == "/WINNT/System32/DRIVERS/x.sys")
        #expect(DriverPath.resolve("\\SystemRoot\\System32\\drivers\\y.sys", service: "y", systemRoot: "WINDOWS") == "/WINDOWS/System32/drivers/y.sys")
        #expect(DriverPath.resolve("\\??\\C:\\Drivers\\z.sys", service: "z", systemRoot: "WINDOWS") == "/Drivers/z.sys")
    }

    @Test func bitlockerAndDynamicDisksAreBlockers() throws {
        let disk = MemoryDevice(size: 64 << 20)
        try disk.write(bytes: PartitionTests.sector([
            PartitionTests.entry(0x07, start: 2048, count: 40960, active: true), PartitionTests.entry(0x42, start: 43008, count: 20000),
        ]), at: 0)
        var vbr = [UInt8](repeating: 0, count: 512)
        vbr.replaceSubrange(0..<11, with: [0xEB, 0x58, 0x90] + Array("-FVE-FS-".utf8))
        vbr[510] = 0x55; vbr[511] = 0xAA
        try disk.write(bytes: vbr, at: 2048 * 512)
        let report = try GuestInspector.inspect(disk)
        #expect(report.partitions.map(\.filesystem) == ["bitlocker", "ldm"])
        #expect(report.verdict("bitlocker")?.severity == .blocker)
        #expect(report.verdict("dynamic-disk")?.severity == .blocker)
    }

    /// Superblock magic at the offsets blkid uses (XFS @0, LUKS @0, LVM2 label @512, ISO9660 @32769, Btrfs @65600).
    @Test func otherFileSystemSignatures() throws {
        func probe(_ patches: [(Int, [UInt8])]) throws -> FileSystemInfo? {
            var bytes = [UInt8](repeating: 0, count: 1 << 17)
            for (at, b) in patches { bytes.replaceSubrange(at..<at + b.count, with: b) }
            return try FileSystemProbe.identify(MemoryDevice(bytes: bytes), at: 0, length: UInt64(bytes.count))
        }
        #expect(try probe([(0, Array("XFSB".utf8)), (108, Array("xfsroot".utf8)), (32, [0x11] + [UInt8](repeating: 0, count: 15))])
            == FileSystemInfo(type: "xfs", label: "xfsroot", uuid: "11000000-0000-0000-0000-000000000000"))
        #expect(try probe([(0, [0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE]), (168, Array("b0b0-luks".utf8))])?.uuid == "b0b0-luks")
        #expect(try probe([(512, Array("LABELONE".utf8)), (512 + 24, Array("LVM2 001".utf8))])?.type == "lvm2")
        #expect(try probe([(32769, Array("CD001".utf8)), (32808, Array("INSTALL CD   ".utf8))])?.label == "INSTALL CD")
        #expect(try probe([(65600, Array("_BHRfS_M".utf8)), (65536 + 0x12B, Array("pool".utf8))])?.label == "pool")
        #expect(try probe([]) == nil)
    }
}
