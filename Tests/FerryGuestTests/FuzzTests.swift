import FerryBinary
import FerryDisk
import FerryGuest
import FerryNTFS
import FerryPartitions
import FerryRegistry
import FerryTestSupport
import Foundation
import Testing

/// Seeded mutation fuzzing per parser: hostile bytes must end in a FormatError/DiskError or a
/// result, never a crash or a hang. Each test is bounded (iterations and 5 s) and prints its seed.
@Suite struct FuzzTests {
    /// A GPT disk written here from the UEFI layout (protective MBR, header, entries, backup).
    static func gptDisk(partitions: [(first: UInt64, last: UInt64)] = [(2048, 20479), (20480, 65502)]) throws -> MemoryDevice {
        let sectors: UInt64 = 65536
        let disk = MemoryDevice(size: sectors * 512)
        var entries = [UInt8](repeating: 0, count: 128 * 128)
        let basic: [UInt8] = [0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7]
        for (i, (first, last)) in partitions.enumerated() {
            var w = ByteWriter()
            w.write(bytes: basic)
            w.write(bytes: (0..<16).map { UInt8($0 + i) })
            w.writeLittleEndian(first)
            w.writeLittleEndian(last)
            w.writeLittleEndian(UInt64(0))
            w.write(bytes: "data\(i)".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
            entries.replaceSubrange(i * 128..<i * 128 + w.bytes.count, with: w.bytes)
        }
        func header(my: UInt64, alternate: UInt64, entriesLBA: UInt64) -> [UInt8] {
            var w = ByteWriter()
            w.write(bytes: Array("EFI PART".utf8))
            for v in [UInt32(0x0001_0000), 92, 0, 0] { w.writeLittleEndian(v) }
            for v in [my, alternate, 34, sectors - 34] { w.writeLittleEndian(v) }
            w.write(bytes: [UInt8](repeating: 0x42, count: 16))
            w.writeLittleEndian(entriesLBA)
            w.writeLittleEndian(UInt32(128))
            w.writeLittleEndian(UInt32(128))
            w.writeLittleEndian(CRC32.checksum(entries))
            var bytes = w.bytes
            let crc = CRC32.checksum(bytes)
            bytes.replaceSubrange(16..<20, with: [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
            return bytes
        }
        try disk.write(bytes: PartitionTests.sector([PartitionTests.entry(0xEE, start: 1, count: UInt32(sectors - 1))], bootCode: []), at: 0)
        try disk.write(bytes: header(my: 1, alternate: sectors - 1, entriesLBA: 2), at: 512)
        try disk.write(bytes: entries, at: 1024)
        try disk.write(bytes: entries, at: (sectors - 33) * 512)
        try disk.write(bytes: header(my: sectors - 1, alternate: 1, entriesLBA: sectors - 33), at: (sectors - 1) * 512)
        return disk
    }

    @Test func gptBuilderIsReadCleanly() throws {
        let table = try PartitionReader.read(Self.gptDisk())
        #expect(table.scheme == .gpt && table.warnings.isEmpty && table.partitions.count == 2)
    }

    @Test func partitionTablesSurviveMutation() throws {
        var rng = SeededGenerator(seed: Fuzz.seed("MBR/GPT"))
        let gpt = try Self.gptDisk()
        let mbr = MemoryDevice(size: 64 << 20)
        try mbr.write(bytes: PartitionTests.sector([PartitionTests.entry(0x07, start: 63, count: 1000, active: true), PartitionTests.entry(0x0F, start: 2048, count: 100_000)]), at: 0)
        try mbr.write(bytes: PartitionTests.sector([PartitionTests.entry(0x83, start: 63, count: 5000), PartitionTests.entry(0x05, start: 20000, count: 10000)], bootCode: []), at: 2048 * 512)
        try mbr.write(bytes: PartitionTests.sector([PartitionTests.entry(0x82, start: 2048, count: 4000)], bootCode: []), at: 22048 * 512)
        let targets: [(any BlockDevice, [Range<UInt64>])] = [
            (gpt, [0..<34 * 512, (65536 - 33) * 512..<65536 * 512]),
            (mbr, [0..<512, 2048 * 512..<2049 * 512, 22048 * 512..<22049 * 512]),
        ]
        var outcomes = (ok: 0, errors: 0)
        let n = Fuzz.loop(iterations: 4000) { i in
            let (base, ranges) = targets[i % 2]
            var patches: [UInt64: UInt8] = [:]
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                let range = ranges.randomElement(using: &rng) ?? ranges[0]
                patches[UInt64.random(in: range, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                _ = try PartitionReader.read(PatchedDevice(base, patches: patches))
                outcomes.ok += 1
            } catch {
                #expect(Fuzz.isExpected(error), "\(error)")
                outcomes.errors += 1
            }
        }
        print("fuzz MBR/GPT: \(n) inputs, \(outcomes.ok) parsed, \(outcomes.errors) rejected")
        #expect(n > 100)
    }

    /// Walks every key and value it can reach, bounded, as an inspector would.
    static func walk(_ hive: Hive) throws {
        var queue = [try hive.rootKey()]
        var visited = 0
        while let key = queue.popLast(), visited < 2000 {
            visited += 1
            for value in try hive.values(of: key) { _ = RegistryValue(type: value.type, data: try hive.data(of: value)) }
            queue += try hive.subkeys(of: key).prefix(2000 - visited)
        }
    }

    @Test func registryHivesSurviveMutation() throws {
        var rng = SeededGenerator(seed: Fuzz.seed("regf"))
        let base = RegistryTests.sampleBuilder().build()
        try Self.walk(Hive(bytes: base))
        var outcomes = (ok: 0, errors: 0)
        let n = Fuzz.loop(iterations: 3000) { _ in
            var bytes = base
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                // Mostly cells; sometimes the base block's offsets and sizes.
                let at = Bool.random(using: &rng) && Int.random(in: 0..<8, using: &rng) == 0
                    ? Int.random(in: 0..<48, using: &rng) : Int.random(in: 4096..<bytes.count, using: &rng)
                bytes[at] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                try Self.walk(Hive(bytes: bytes))
                outcomes.ok += 1
            } catch {
                #expect(Fuzz.isExpected(error), "\(error)")
                outcomes.errors += 1
            }
        }
        print("fuzz regf: \(n) inputs, \(outcomes.ok) walked, \(outcomes.errors) rejected")
        #expect(n > 100)
    }

    @Test func absurdRegistryCountsAreErrors() throws {
        let bytes = RegistryTests.sampleBuilder().build()
        let hive = try Hive(bytes: bytes)
        // nk #subkeys at cell data offset 20 (root), #values at 36 (a key with values).
        for (path, field) in [("", 20), ("ControlSet001\\Services\\atapi", 36)] {
            let key = try #require(try hive.key(path))
            let at = Int(key.cellOffset.dataFileOffset) + field
            var copy = bytes
            copy.replaceSubrange(at..<at + 4, with: [0xFF, 0xFF, 0xFF, 0x7F])
            let broken = try Hive(bytes: copy)
            let damaged = try broken.key(atCell: key.cellOffset)
            #expect(throws: FormatError.self) {
                _ = try broken.subkeys(of: damaged)
                _ = try broken.values(of: damaged)
            }
        }
    }
}
