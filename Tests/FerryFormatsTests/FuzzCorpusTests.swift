import FerryBinary
import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@testable import FerryFormats

/// The seed corpus of the image-format fuzz targets in FuzzTesting/, built from ferry's own
/// writers and builders (and qemu-img), and the replay of every committed seed and crash input.
/// `FERRY_WRITE_FUZZ_CORPUS=1 swift test --filter FormatsFuzzCorpusTests` rewrites the corpus.
@Suite struct FormatsFuzzCorpusTests {
    static let targetNames: [FormatsFuzz.Target: String] = [
        .qcow2: "FuzzQCOW2", .vmdk: "FuzzVMDK", .vmdkDescriptor: "FuzzVMDKDescriptor",
        .vhd: "FuzzVHD", .vhdx: "FuzzVHDX", .ova: "FuzzOVA",
    ]

    /// A 1 MiB disk with three small data runs: images of it stay a few KiB.
    static func raw(_ path: String) throws {
        var rng = FerryTestSupport.SeededRandom(seed: 9)
        let text = Array(String(repeating: "ferry fuzz seed ", count: 300).utf8)
        try writeSparseFile(path, size: 1 << 20, layout: [(0, rng.bytes(1000)), (300_000, text), ((1 << 20) - 4096, rng.bytes(512))])
    }

    static func file(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// An image file as an image target's input (`FormatsFuzz.pageSize` pages).
    static func paged(_ image: [UInt8]) throws -> [UInt8] {
        #expect(image.count % FormatsFuzz.pageSize == 0, "a seed image of \(image.count) bytes does not end on a page")
        return try FuzzPagedInput.encode(FuzzBytesDevice(name: "seed", bytes: image), pageSize: FormatsFuzz.pageSize)
    }

    static let descriptors = [
        """
        # Disk DescriptorFile
        version=1
        CID=fffffffe
        parentCID=ffffffff
        createType="monolithicFlat"

        RW 2048 FLAT "disk-flat.vmdk" 0
        """,
        """
        version=3
        CID=12345678
        parentCID=87654321
        createType="twoGbMaxExtentSparse"
        parentFileNameHint="parent.vmdk"
        RW 4192256 SPARSE "disk-s001.vmdk"
        RW 2048 ZERO
        RDONLY 1024 FLAT "disk-f002.vmdk" 2048
        NOACCESS 16 VMFSSPARSE "disk-delta.vmdk"
        # The Disk Data Base
        ddb.adapterType = "lsilogic"
        """,
        "version=1\r\nCID=1\r\ncreateType=\"vmfs\"\r\nRW 100 VMFS \"x-flat.vmdk\"\r\nRW 8 SESPARSE \"y-sesparse.vmdk\"\r\n",
    ]

    /// Seeds per target; each must open cleanly through the fuzz entry point.
    static func seeds(_ dir: TempDir) throws -> [FormatsFuzz.Target: [(name: String, bytes: [UInt8])]] {
        let raw = dir.file("src.raw")
        try Self.raw(raw)
        var seeds: [FormatsFuzz.Target: [(name: String, bytes: [UInt8])]] = [:]
        // ferry's own qcow2 writer.
        let source = try FileDevice.openForReading(raw)
        let target = try FileDevice.create(dir.file("ferry.qcow2"), size: 0)
        let writer = try DiskImage.writer(.qcow2, over: target, virtualSize: source.size)
        try source.readBytes(at: 0, count: Int(source.size)).withUnsafeBytes { try writer.write($0, at: 0) }
        try writer.flush()
        seeds[.qcow2, default: []].append(("ferry.qcow2", try paged(file(dir.file("ferry.qcow2")))))
        // A VMware-dialect stream (footer, markers) from the test builder.
        seeds[.vmdk, default: []].append(("vmware-stream.vmdk", try paged(VMwareStreamBuilder.build(from: try source.readBytes(at: 0, count: Int(source.size))))))
        seeds[.vmdkDescriptor] = descriptors.enumerated().map { ("descriptor\($0.offset).txt", Array($0.element.utf8)) }
        guard Tool.haveQemuImg("the fuzz corpus's qemu-img seeds") else { return seeds }
        let variants: [(FormatsFuzz.Target, String, String, [String])] = [
            (.qcow2, "v3-4k.qcow2", "qcow2", ["-o", "cluster_size=4096"]),
            (.qcow2, "v2-4k.qcow2", "qcow2", ["-o", "compat=0.10,cluster_size=4096"]),
            (.qcow2, "compressed.qcow2", "qcow2", ["-c", "-o", "cluster_size=4096"]),
            (.qcow2, "extended-l2.qcow2", "qcow2", ["-o", "extended_l2=on,cluster_size=16384"]),
            (.vmdk, "sparse.vmdk", "vmdk", ["-o", "subformat=monolithicSparse"]),
            (.vmdk, "stream.vmdk", "vmdk", ["-o", "subformat=streamOptimized"]),
            (.vhd, "dynamic.vhd", "vpc", ["-o", "subformat=dynamic"]),
            (.vhdx, "dynamic.vhdx", "vhdx", ["-o", "subformat=dynamic,block_size=1M"]),
        ]
        for (kind, name, format, options) in variants {
            try Tool.run(Tool.qemuImg, ["convert", "-f", "raw", "-O", format] + options + [raw, dir.file(name)])
            seeds[kind, default: []].append((name, try paged(file(dir.file(name)))))
        }
        // A VHDX with a dirty log, so the fuzzer starts inside log search and replay.
        var logRNG = SeededRandom(seed: 3)
        if let dirty = try VHDXLogBuilder.dirty(clean: try file(dir.file("dynamic.vhdx")), rng: &logRNG) {
            seeds[.vhdx, default: []].append(("dirty-log.vhdx", try paged(dirty.bytes)))
        }
        // An OVA: an OVF and the stream-optimized disk in a ustar archive.
        if let tar = Tools.find("tar") {
            try "<?xml version=\"1.0\"?>\n<Envelope><References><File ovf:href=\"stream.vmdk\" ovf:id=\"file1\"/></References></Envelope>\n"
                .write(toFile: dir.file("vm.ovf"), atomically: true, encoding: .utf8)
            try Tool.run(tar, ["--format=ustar", "--owner=0", "--group=0", "--mtime=@0", "-C", dir.path, "-cf", dir.file("vm.ova"), "vm.ovf", "stream.vmdk"])
            seeds[.ova, default: []].append(("vm.ova", try paged(file(dir.file("vm.ova")))))
        } else {
            Skip.because("tar is not installed (the OVA seed)")
        }
        return seeds
    }

    @Test func seedsOpenCleanly() throws {
        let dir = try TempDir()
        let all = try Self.seeds(dir)
        for (kind, seeds) in all.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            for seed in seeds {
                #expect(throws: Never.self, "\(kind) seed \(seed.name)") { try FormatsFuzz.run(kind, seed.bytes) }
            }
            try FuzzCorpus.writeSeeds(Self.targetNames[kind] ?? kind.rawValue, seeds)
        }
        #expect(all[.qcow2]?.isEmpty == false && all[.vmdk]?.isEmpty == false && all[.vmdkDescriptor]?.count == 3)
    }

    /// Every committed seed and every input that once crashed a target (FuzzTesting/FailCases)
    /// ends in data or the parser's own error, never a trap or another error type.
    @Test(arguments: FormatsFuzz.Target.allCases)
    func committedInputsOnlyThrowFormatErrors(_ kind: FormatsFuzz.Target) throws {
        let inputs = try FuzzCorpus.committed(Self.targetNames[kind] ?? kind.rawValue)
        #expect(!inputs.isEmpty, "no committed corpus for \(kind)")
        for input in inputs {
            do {
                try FormatsFuzz.run(kind, input.bytes)
            } catch {
                #expect(FormatsFuzz.isExpected(error), "\(input.name): unexpected \(type(of: error)): \(error)")
            }
        }
    }
}
