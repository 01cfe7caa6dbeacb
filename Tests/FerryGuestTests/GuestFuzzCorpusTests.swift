import FerryBinary
import FerryDisk
import FerryNTFS
import FerryPartitions
import FerryRegistry
import FerryTestSupport
import Foundation
import Testing

/// The seed corpus of the MBR/GPT, NTFS and regf fuzz targets in FuzzTesting/, built with the
/// tests' own builders (and mkntfs + ntfs-3g for the volume), and the replay of every committed
/// seed and crash input. `FERRY_WRITE_FUZZ_CORPUS=1 swift test --filter GuestFuzzCorpusTests`
/// rewrites the corpus.
@Suite struct GuestFuzzCorpusTests {
    /// Partition seeds: the GPT disk of FuzzTests and an MBR disk with an extended chain.
    static func partitionSeeds() throws -> [(name: String, bytes: [UInt8])] {
        let mbr = MemoryDevice(size: 32 << 20)
        try mbr.write(bytes: PartitionTests.sector([PartitionTests.entry(0x07, start: 63, count: 1000, active: true), PartitionTests.entry(0x0F, start: 2048, count: 30000)]), at: 0)
        try mbr.write(bytes: PartitionTests.sector([PartitionTests.entry(0x83, start: 63, count: 5000), PartitionTests.entry(0x05, start: 20000, count: 10000)], bootCode: []), at: 2048 * 512)
        try mbr.write(bytes: PartitionTests.sector([PartitionTests.entry(0x82, start: 2048, count: 4000)], bootCode: []), at: 22048 * 512)
        try mbr.write(bytes: [1], at: mbr.size - 1)  // the paged disk keeps its 32 MiB size
        return [
            ("gpt.sectors", try FuzzPagedInput.encode(FuzzTests.gptDisk(), pageSize: PartitionsFuzz.sectorSize)),
            ("mbr-extended.sectors", try FuzzPagedInput.encode(mbr, pageSize: PartitionsFuzz.sectorSize)),
        ]
    }

    static func registrySeeds() -> [(name: String, bytes: [UInt8])] {
        var small = HiveBuilder(rootName: "ROOT", minorVersion: 3, maxLeafEntries: 2)
        small.set("Select", "Current", .dword(1))
        small.set("ControlSet001\\Services\\atapi", "Start", .dword(0))
        small.set("ControlSet001\\Services\\atapi", "Group", .string("SCSI miniport"))
        small.set("ControlSet001\\Control", "List", .multiString(["a", "b"]))
        small.addKey("ControlSet001\\Enum")
        return [("sample.hive", RegistryTests.sampleBuilder().build()), ("small.hive", small.build())]
    }

    /// A bare 8 MiB Windows volume (mkntfs + ntfs-3g), paged; nil when the tools are missing.
    static func ntfsSeed(_ dir: URL) throws -> [(name: String, bytes: [UInt8])]? {
        guard GuestTools.require("mkntfs", "ntfs-3g") else { return nil }
        let tree = dir.appendingPathComponent("tree")
        try GuestTools.writeTree(tree, WindowsProfile.mergeIDE2003.tree())
        let path = dir.appendingPathComponent("volume.img").path
        guard try GuestTools.makeFixture(["ntfs", path, "volume", tree.path, "8"]) else { return nil }
        // $LogFile is megabytes of 0xFF that no target reads: left out, it reads as zeros.
        let paged = try FuzzPagedInput.encode(FileDevice.openForReading(path), pageSize: NTFSFuzz.pageSize, skipping: 0xFF)
        return [("windows-volume.pages", paged)]
    }

    @Test func seedsReadCleanly() throws {
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let partitions = try Self.partitionSeeds()
        for seed in partitions {
            #expect(throws: Never.self, "\(seed.name)") { try PartitionsFuzz.run(seed.bytes) }
            let table = try PartitionReader.read(FuzzPagedInput.device(seed.bytes, pageSize: PartitionsFuzz.sectorSize))
            #expect(table.warnings.isEmpty && table.partitions.count >= 2, "\(seed.name): \(table)")
        }
        try FuzzCorpus.writeSeeds("FuzzPartitions", partitions)
        let hives = Self.registrySeeds()
        for seed in hives { #expect(throws: Never.self, "\(seed.name)") { try RegistryFuzz.run(seed.bytes) } }
        try FuzzCorpus.writeSeeds("FuzzRegistry", hives)
        if let ntfs = try Self.ntfsSeed(dir) {
            for seed in ntfs {
                #expect(throws: Never.self, "\(seed.name)") { try NTFSFuzz.run(seed.bytes) }
                let volume = try NTFSVolume(device: FuzzPagedInput.device(seed.bytes, pageSize: NTFSFuzz.pageSize))
                #expect(try volume.open(NTFSFuzz.paths[0]) != nil, "the seed must reach the SYSTEM hive")
            }
            try FuzzCorpus.writeSeeds("FuzzNTFS", ntfs)
        }
    }

    /// Every committed seed and every input that once crashed a target (FuzzTesting/FailCases)
    /// ends in a result or the parser's own error, never a trap or another error type.
    @Test(arguments: ["FuzzPartitions", "FuzzNTFS", "FuzzRegistry"])
    func committedInputsOnlyThrowParserErrors(_ target: String) throws {
        let inputs = try FuzzCorpus.committed(target)
        #expect(!inputs.isEmpty, "no committed corpus for \(target)")
        for input in inputs {
            do {
                switch target {
                case "FuzzPartitions": try PartitionsFuzz.run(input.bytes)
                case "FuzzNTFS": try NTFSFuzz.run(input.bytes)
                default: try RegistryFuzz.run(input.bytes)
                }
            } catch {
                #expect(PartitionsFuzz.isExpected(error), "\(input.name): unexpected \(type(of: error)): \(error)")
            }
        }
    }
}
