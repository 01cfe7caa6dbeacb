import FerryBinary
import FerryDisk
import FerryGuest
import FerryNTFS
import Foundation
import Testing

@Suite struct NTFSFuzzTests {
    /// A small Windows volume (bare, layout "volume") made by the fixture script, or nil.
    static func volumeImage(_ dir: URL, test: String = #function) throws -> String? {
        guard GuestTools.require("mkntfs", "ntfs-3g", test: test) else { return nil }
        var profile = WindowsProfile.mergeIDE2003
        profile.driverFiles += (0..<200).map { "extra\($0).sys" }  // a directory with INDX blocks
        return try profile.image(in: dir, layout: "volume", test: test)
    }

    /// Byte ranges worth mutating: the first 48 MFT records and every INDX block.
    static func metadataRanges(_ device: any BlockDevice) throws -> [Range<UInt64>] {
        let volume = try NTFSVolume(device: device)
        let mft = volume.bootSector.mftCluster * UInt64(volume.clusterSize)
        var ranges = [mft..<mft + 48 * UInt64(volume.recordSize)]
        var offset: UInt64 = 0
        while offset + 4096 <= device.size {
            if try device.readBytes(at: offset, count: 4) == Array("INDX".utf8) { ranges.append(offset..<offset + 4096) }
            offset += 4096
        }
        return ranges
    }

    @Test func ntfsSurvivesMutation() throws {
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try Self.volumeImage(dir) else { return }
        let base = try FileDevice.openForReading(path)
        let ranges = try Self.metadataRanges(base)
        #expect(ranges.count > 2)
        var rng = SeededGenerator(seed: Fuzz.seed("NTFS"))
        var outcomes = (ok: 0, errors: 0, windows: 0)
        let n = Fuzz.loop(iterations: 1500, minimum: 40, budget: .seconds(10)) { i in
            var patches: [UInt64: UInt8] = [:]
            for _ in 0..<Int.random(in: 1...24, using: &rng) {
                let range = ranges.randomElement(using: &rng) ?? ranges[0]
                patches[UInt64.random(in: range, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            let device = PatchedDevice(base, patches: patches)
            do {
                let volume = try NTFSVolume(device: device)
                if let stream = try volume.open("/WINDOWS/system32/config/SYSTEM") { _ = try stream.readAll(limit: 64 << 20) }
                _ = try volume.open("/WINDOWS/system32/drivers/extra150.sys")
                _ = try volume.hibernationState()
                outcomes.ok += 1
            } catch {
                #expect(Fuzz.isExpected(error), "\(error)")
                outcomes.errors += 1
            }
            // The inspector turns damage into warnings, never a crash.
            if i % 8 == 0, (try? GuestInspector.inspect(device))?.windows != nil { outcomes.windows += 1 }
        }
        print("fuzz NTFS: \(n) inputs, \(outcomes.ok) read, \(outcomes.errors) rejected, \(outcomes.windows) still found Windows")
        #expect(n > 20)
    }

    /// An index leaf whose last entry points back at its own block: the walk must stop.
    @Test func indexLoopIsDetected() throws {
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let path = try Self.volumeImage(dir) else { return }
        var image = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let device = MemoryDevice(bytes: image, writable: false)
        let volume = try NTFSVolume(device: device)
        let drivers = try #require(try volume.file(at: "/WINDOWS/system32/drivers"))
        let allocation = try volume.stream(of: drivers, type: .indexAllocation, name: "$I30")
        // Rewrite block VCN 0: its last entry gets a sub-node pointing at VCN 0 itself.
        let blockOffset = try #require(allocation.runs.first?.lcn).value * UInt64(volume.clusterSize)
        var block = Array(image[Int(blockOffset)..<Int(blockOffset) + 4096])
        try FixUp.apply(&block, structure: "INDX", offset: blockOffset)
        let header = 24
        let entriesStart = header + Int(try #require(block.littleEndian(UInt32.self, at: header)))
        let inUse = Int(try #require(block.littleEndian(UInt32.self, at: header + 4)))
        var position = entriesStart
        var lastName = ""
        while position < header + inUse, (block.littleEndian(UInt32.self, at: position + 12) ?? 2) & 2 == 0 {
            let length = Int(block[position + 16 + 64])
            lastName = NTFSName.decode(Array(block[position + 16 + 66..<position + 16 + 66 + 2 * length]))
            position += Int(block.littleEndian(UInt16.self, at: position + 8) ?? 16)
        }
        block.replaceSubrange(position + 8..<position + 10, with: [24, 0])  // length 16 → 24
        block.replaceSubrange(position + 12..<position + 16, with: [3, 0, 0, 0])  // last | has sub-node
        block.replaceSubrange(position + 16..<position + 24, with: [UInt8](repeating: 0, count: 8))  // VCN 0
        block.replaceSubrange(header + 4..<header + 8, with: withUnsafeBytes(of: UInt32(inUse + 8).littleEndian, Array.init))
        // Undo the fix-ups: stride ends go back into the array, the USN into the strides.
        let usa = Int(block.littleEndian(UInt16.self, at: 4) ?? 40)
        for i in 1..<(4096 / 512 + 1) {
            let end = i * 512 - 2
            block[usa + 2 * i] = block[end]
            block[usa + 2 * i + 1] = block[end + 1]
            block[end] = block[usa]
            block[end + 1] = block[usa + 1]
        }
        image.replaceSubrange(Int(blockOffset)..<Int(blockOffset) + 4096, with: block)
        let looped = try NTFSVolume(device: MemoryDevice(bytes: image, writable: false))
        let dirRecord = try #require(try looped.file(at: "/WINDOWS/system32/drivers"))
        // A name just after block 0's last key: the walk follows block 0's last entry back to block 0.
        var sawCycle = false
        for name in [lastName + "!", lastName + "~"] {
            do { _ = try looped.lookup(name, in: dirRecord) } catch let error as FormatError { sawCycle = sawCycle || error.code == .cycle }
        }
        #expect(sawCycle)
    }
}
