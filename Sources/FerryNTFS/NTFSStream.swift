public import FerryDisk
import FerryBinary

/// The bytes of one attribute: resident bytes, or runs of clusters on the device. Sparse
/// runs and bytes past the initialized size read as zeros; reads stop at the data size.
public struct NTFSStream: Sendable {
    public let device: any BlockDevice
    public let volumeOffset: UInt64
    public let clusterSize: Int
    public let runs: [DataRun]
    public let resident: [UInt8]?
    public let dataSize: UInt64
    public let initializedSize: UInt64
    let what: String

    init(device: any BlockDevice, volumeOffset: UInt64, clusterSize: Int, runs: [DataRun], resident: [UInt8]?,
         dataSize: UInt64, initializedSize: UInt64, what: String) {
        self.device = device
        self.volumeOffset = volumeOffset
        self.clusterSize = clusterSize
        self.runs = runs
        self.resident = resident
        self.dataSize = dataSize
        self.initializedSize = initializedSize
        self.what = what
    }

    public var size: UInt64 { dataSize }

    /// The disk offset of `position` and how many bytes follow it contiguously (nil offset: sparse).
    func diskOffset(of position: UInt64) throws -> (UInt64?, UInt64) {
        let cs = UInt64(clusterSize)
        let vcn = position / cs
        // Runs are in VCN order; binary search keeps fragmented hives cheap.
        var lo = 0, hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].vcn.value + runs[mid].length <= vcn { lo = mid + 1 } else { hi = mid }
        }
        guard lo < runs.count, runs[lo].vcn.value <= vcn else {
            throw FormatError(.outOfRange, structure: "NTFS stream of \(what)", offset: position, "byte \(position) is not mapped by any run")
        }
        let run = runs[lo]
        let within = position - run.vcn.value * cs
        let remaining = run.length * cs - within
        guard let lcn = run.lcn else { return (nil, remaining) }
        return (volumeOffset + lcn.value * cs + within, remaining)
    }

    /// The whole stream, refusing anything larger than `limit` bytes.
    public func readAll(limit: Int) throws -> [UInt8] {
        guard dataSize <= UInt64(limit) else {
            throw FormatError(.limitExceeded, structure: "NTFS stream of \(what)", "\(dataSize) bytes exceed the limit of \(limit)")
        }
        return try read(at: 0, count: Int(dataSize))
    }

    /// Reads `count` bytes at `position`; the range must lie within the data size.
    public func read(at position: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, position <= dataSize, UInt64(count) <= dataSize - position else {
            throw FormatError(.outOfRange, structure: "NTFS stream of \(what)", offset: position,
                "\(count) bytes at \(position) run past the \(dataSize)-byte stream")
        }
        if let resident {
            return Array(resident[Int(position)..<Int(position) + count])
        }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let at = position + UInt64(done)
            let (disk, contiguous) = try diskOffset(of: at)
            let n = Int(min(UInt64(count - done), contiguous))
            if let disk, at < initializedSize {
                let valid = Int(min(UInt64(n), initializedSize - at))
                let bytes = try device.readBytes(at: disk, count: valid)
                out.replaceSubrange(done..<done + valid, with: bytes)
            }
            done += n  // n ≥ 1: a run always has at least one byte left past `at`
        }
        return out
    }
}
