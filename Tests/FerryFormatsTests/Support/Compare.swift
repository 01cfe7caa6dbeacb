import FerryBinary
import FerryDisk
import Foundation
import Testing

@testable import FerryFormats

/// Byte-for-byte comparison of a device against a raw file (the oracle's output).
enum Compare {
    /// Opens `image` with ferry and checks it against `qemu-img convert -O raw`:
    /// detection, every byte (sequential and concurrent reads), and optionally extents.
    static func matchesOracle(_ image: String, format: String, detected: ImageFormat, checkMap: Bool = true) throws {
        let oracle = image + ".oracle.raw"
        try Tool.run(Tool.qemuImg, ["convert", "-f", format, "-O", "raw", image, oracle])
        #expect(try DiskImage.detect(image) == detected)
        let disk = try DiskImage.openSource(image)
        let diff = try firstDifference(disk, rawPath: oracle)
        #expect(diff == nil, "\(image) differs from qemu-img's raw output at byte \(diff ?? 0)")
        #expect(try concurrentReadsAgree(disk, rawPath: oracle))
        if checkMap { try checkExtents(disk, imagePath: image, format: format) }
    }

    /// Reads all of `device` in unevenly sized pieces (so reads straddle clusters and
    /// grains) and compares with `rawPath`. Returns the first differing offset, if any.
    static func firstDifference(_ device: any BlockDevice, rawPath: String, seed: UInt64 = 7) throws -> UInt64? {
        let raw = try FileDevice.openForReading(rawPath)
        #expect(device.size == raw.size, "virtual size \(device.size) vs oracle \(raw.size)")
        guard device.size == raw.size else { return 0 }
        var rng = SeededRandom(seed: seed)
        var position: UInt64 = 0
        while position < device.size {
            let count = Int(min(device.size - position, UInt64.random(in: 1...3_000_000, using: &rng)))
            let ours = try device.readBytes(at: position, count: count)
            let theirs = try raw.readBytes(at: position, count: count)
            if !Bytes.equal(ours, theirs) {
                let i = ours.indices.first(where: { ours[$0] != theirs[$0] }) ?? 0
                return position + UInt64(i)
            }
            position += UInt64(count)
        }
        return nil
    }

    /// Reads the device from several threads at once at random offsets and checks
    /// the results against the raw file.
    static func concurrentReadsAgree(_ device: any BlockDevice, rawPath: String, threads: Int = 4, reads: Int = 200) throws -> Bool {
        let raw = try FileDevice.openForReading(rawPath)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var rng = SeededRandom(seed: UInt64(t) + 99)
            for _ in 0..<reads {
                let count = Int(UInt64.random(in: 1...300_000, using: &rng) % max(1, device.size))
                let offset = UInt64.random(in: 0...(device.size - UInt64(count)), using: &rng)
                do {
                    if try !Bytes.equal(device.readBytes(at: offset, count: count), raw.readBytes(at: offset, count: count)) {
                        failures.add()
                    }
                } catch { failures.add() }
            }
        }
        return failures.count == 0
    }

    /// Checks the extents: they tile the disk in order, every hole/zero extent reads as
    /// zeros, and every range qemu-img map calls unallocated-and-zero is not data here.
    static func checkExtents(_ device: any BlockDevice, imagePath: String, format: String) throws {
        let extents = try device.extents(at: 0, length: device.size)
        var expected: UInt64 = 0
        for e in extents {
            #expect(e.offset == expected, "extents leave a gap or overlap at \(expected)")
            expected = e.end
            if e.kind != .data {
                var at = e.offset
                while at < e.end {
                    let n = Int(min(e.end - at, 1 << 22))
                    let bytes = try device.readBytes(at: at, count: n)
                    #expect(Bytes.isZero(bytes), "\(e) does not read as zeros")
                    at += UInt64(n)
                }
            }
        }
        #expect(expected == device.size)
        let map = try Tool.run(Tool.qemuImg, ["map", "--output=json", "-f", format, imagePath]).output
        guard let json = try JSONSerialization.jsonObject(with: Data(map.utf8)) as? [[String: Any]] else {
            Issue.record("qemu-img map gave no JSON")
            return
        }
        var qemuNonData: UInt64 = 0
        for entry in json {
            guard let data = entry["data"] as? Bool, !data,
                  let start = (entry["start"] as? NSNumber)?.uint64Value,
                  let length = (entry["length"] as? NSNumber)?.uint64Value else { continue }
            qemuNonData += length
            for e in extents where e.kind == .data && e.offset < start + length && e.end > start {
                Issue.record("qemu-img map says \(start)+\(length) holds no data, but ferry reports \(e)")
                return
            }
        }
        let ourNonData = extents.filter { $0.kind != .data }.reduce(0) { $0 + $1.length }
        #expect(ourNonData >= qemuNonData, "ferry reports \(ourNonData) non-data bytes, qemu-img \(qemuNonData)")
    }
}

final class Failures: @unchecked Sendable {
    // @unchecked: the count is only touched under the lock.
    private let lock = NSLock()
    private var value = 0
    func add() { lock.lock(); value += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return value }
}

/// Fast comparisons for large buffers (element-wise Array == is slow in debug builds).
enum Bytes {
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
    }

    static func isZero(_ a: [UInt8]) -> Bool {
        guard let first = a.first else { return true }
        guard first == 0 else { return false }
        // A buffer is all zeros when it equals itself shifted by one byte.
        return a.withUnsafeBytes { memcmp($0.baseAddress!, $0.baseAddress! + 1, a.count - 1) == 0 }
    }
}
