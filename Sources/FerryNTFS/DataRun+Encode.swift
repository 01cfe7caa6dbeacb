import FerryBinary

extension DataRun {
    /// Encodes runs as mapping pairs (formats §6.4), the inverse of `decode`, ending with 0x00.
    ///
    /// Each pair is a header byte (low nibble: bytes of the run length, high nibble: bytes of the
    /// LCN delta from the previous run), the length, then the delta. Both are written in the
    /// fewest bytes that keep them *signed* (a length of 0x80 takes two bytes, `80 00`), as
    /// ntfs-3g's `ntfs_mapping_pairs_build` and Windows do; a sparse run has no delta bytes.
    /// The runs must be consecutive from their first VCN.
    public static func encode(_ runs: [DataRun]) throws -> [UInt8] {
        var out: [UInt8] = []
        var previousLCN: Int64 = 0
        var expectedVCN = runs.first?.vcn.value ?? 0
        for run in runs {
            guard run.length > 0, run.length < 1 << 62, run.vcn.value == expectedVCN else {
                throw FormatError(.inconsistent, structure: "NTFS runlist", field: "run",
                    "run at \(run.vcn) of \(run.length) clusters does not follow VCN \(expectedVCN)")
            }
            expectedVCN += run.length
            let lengthBytes = signedBytes(Int64(run.length))
            var deltaBytes: [UInt8] = []
            if let lcn = run.lcn {
                guard lcn.value < 1 << 62 else {
                    throw FormatError(.outOfRange, structure: "NTFS runlist", field: "LCN", "\(lcn) is absurd")
                }
                deltaBytes = signedBytes(Int64(lcn.value) - previousLCN)
                previousLCN = Int64(lcn.value)
            }
            out.append(UInt8(deltaBytes.count << 4 | lengthBytes.count))
            out += lengthBytes
            out += deltaBytes
        }
        out.append(0)
        return out
    }

    /// The little-endian bytes of `value`, as few as keep its sign (at least one).
    static func signedBytes(_ value: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        var v = value
        repeat {
            bytes.append(UInt8(truncatingIfNeeded: v))
            v >>= 8  // arithmetic shift: a negative value tends to −1
        } while !((v == 0 && bytes[bytes.count - 1] & 0x80 == 0) || (v == -1 && bytes[bytes.count - 1] & 0x80 != 0))
        return bytes
    }

    /// Appends `extents` (LCN, clusters) after `runs`, merging an extent that continues the last run.
    static func appending(_ extents: [(lcn: LCN, length: UInt64)], to runs: [DataRun]) -> [DataRun] {
        var out = runs
        for extent in extents {
            let nextVCN = out.last.map { $0.vcn.value + $0.length } ?? 0
            if let last = out.last, let lastLCN = last.lcn, lastLCN.value + last.length == extent.lcn.value {
                out[out.count - 1].length += extent.length
            } else {
                out.append(DataRun(vcn: VCN(nextVCN), length: extent.length, lcn: extent.lcn))
            }
        }
        return out
    }
}
