import FerryDisk
import FerryTestSupport
import Foundation
import Testing

@Suite struct FileDeviceTests {
    @Test func extentsFollowHoles() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("sparse.raw")
        try writeSparseFile(path, size: 10 << 20, layout: [(4 << 20, [UInt8](repeating: 1, count: 8192))])
        let device = try FileDevice.openForReading(path)
        let extents = try device.extents(at: 0, length: device.size)
        #expect(extents.first?.kind == .hole)
        #expect(extents.contains { $0.kind == .data && $0.offset <= 4 << 20 && $0.end >= (4 << 20) + 8192 })
        #expect(extents.reduce(0) { $0 + $1.length } == 10 << 20)
        #expect(device.capabilities.contains(.extents))
        #expect(!device.capabilities.contains(.writable))
    }

    @Test func readOnlySourceRefusesWrites() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("a.raw")
        try writeSparseFile(path, size: 4096, layout: [])
        let device = try FileDevice.openForReading(path)
        #expect(throws: DiskError.self) {
            try [UInt8](repeating: 1, count: 10).withUnsafeBytes { try device.write($0, at: 0) }
        }
    }

    @Test func readPastEndIsAnError() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("a.raw")
        try writeSparseFile(path, size: 4096, layout: [])
        let device = try FileDevice.openForReading(path)
        #expect(throws: DiskError.self) { _ = try device.readBytes(at: 4000, count: 200) }
    }

    @Test func zeroingPunchesHoles() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("z.raw")
        try writeSparseFile(path, size: 4 << 20, layout: [(0, [UInt8](repeating: 9, count: 4 << 20))])
        let device = try FileDevice.openForWriting(path)
        try device.writeZeros(at: 1 << 20, length: 2 << 20, mayDiscard: true)
        try device.flush()
        #expect(try device.readBytes(at: 1 << 20, count: 2 << 20).allSatisfy { $0 == 0 })
        #expect(try device.readBytes(at: (3 << 20), count: 10) == [UInt8](repeating: 9, count: 10))
        #expect(try device.extents(at: 0, length: device.size).contains { $0.kind == .hole })
    }

    @Test func memoryDeviceRoundTrips() throws {
        let memory = MemoryDevice(size: 300_000)
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try memory.write($0, at: 131_070) }
        #expect(try memory.readBytes(at: 131_069, count: 5) == [0, 1, 2, 3, 0])
        #expect(try memory.extents(at: 0, length: 300_000).map(\.kind) == [.hole, .data, .hole])
    }
}

/// Block devices through loop devices: needs root and losetup (CI runs as root).
@Suite struct LoopDeviceTests {
    /// Attaches `file` to a free loop device, or prints why not and returns nil.
    func attach(_ file: String) throws -> String? { try LoopDevice.attach(file) }

    @Test func copiesToABlockDeviceAndRefusesAMountedOne() throws {
        let dir = try TemporaryDirectory()
        let backing = dir.file("backing.img")
        try writeSparseFile(backing, size: 32 << 20, layout: [])
        guard let loop = try attach(backing) else { return }
        defer { _ = try? Tools.run("losetup", ["-d", loop]) }

        do {
            let device = try FileDevice.openForWriting(loop)
            #expect(device.kind == .blockDevice)
            #expect(device.size == 32 << 20)
            #expect(device.logicalSectorSize == 512)
            // While we hold it exclusively, nobody else may write it.
            #expect(throws: DiskError.self) { try FileDevice.openForWriting(loop) }
            try device.close()
        }

        var rng = SeededRandom(seed: 11)
        let source = dir.file("source.raw")
        try writeSparseFile(source, size: 16 << 20, layout: [(0, rng.bytes(100_000)), (9 << 20, rng.bytes(50_000))])
        let copy = try FerryExecutable.run(["copy", source, loop, "--verify", "--progress", "none"])
        #expect(copy.status == 0, "\(copy.stderr)")
        let cmp = try Tools.run("cmp", ["-n", "\(16 << 20)", source, loop])
        #expect(cmp.status == 0, "\(cmp.stdout)")

        let tooBig = dir.file("big.raw")
        try writeSparseFile(tooBig, size: 64 << 20, layout: [])
        let small = try FerryExecutable.run(["copy", tooBig, loop])
        #expect(small.status == 73)
        #expect(small.stderr.contains("holds"))

        guard Tools.require("mkfs.ext2", "mount", "umount") else { return }
        #expect(try Tools.run("mkfs.ext2", ["-q", "-F", loop]).status == 0)
        let mountpoint = dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        // Read-only: a read-write ext2 mount writes its superblock back whenever the kernel
        // flushes, which made the "nothing written" check below fail at random.
        guard try Tools.run("mount", ["-o", "ro", loop, mountpoint]).status == 0 else {
            Skip.because("mounting a loop device is not allowed here")
            return
        }
        defer { _ = try? Tools.run("umount", [mountpoint]) }
        let before = try Tools.run("sha256sum", [loop]).stdout
        let refused = try FerryExecutable.run(["copy", source, loop])
        #expect(refused.status == 73)
        #expect(refused.stderr.contains("mounted or in use"))
        #expect(try Tools.run("sha256sum", [loop]).stdout == before)
    }
}

/// A target file system that fills up mid-copy: needs root to mount a small tmpfs.
@Suite struct FullDiskTests {
    @Test func fullTargetIsAnIOErrorAndLeavesNothing() throws {
        guard Tools.requireRoot("the full-disk test (it mounts a tmpfs)") else { return }
        guard Tools.require("mount", "umount") else { return }
        let dir = try TemporaryDirectory()
        let mountpoint = dir.file("small")
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        guard try Tools.run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountpoint]).status == 0 else {
            Skip.because("mounting a tmpfs is not allowed here")
            return
        }
        defer { _ = try? Tools.run("umount", [mountpoint]) }
        var rng = SeededRandom(seed: 21)
        let source = dir.file("source.raw")
        try writeSparseFile(source, size: 8 << 20, layout: [(0, rng.bytes(8 << 20))])
        let result = try FerryExecutable.run(["copy", source, mountpoint + "/disk.raw", "--progress", "none"])
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr.contains("No space left"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountpoint).isEmpty)
    }
}
