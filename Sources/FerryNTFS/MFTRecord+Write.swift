import FerryBinary

/// An MFT record as bytes, for rewriting in place: fix-ups applied (as `MFTRecord` parses
/// them), and the disk pieces it occupies (two or more when clusters are smaller than records
/// and $MFT is fragmented between them).
struct RawMFTRecord: Sendable {
    var number: UInt64
    var bytes: [UInt8]
    var pieces: [(offset: UInt64, length: Int)]

    /// Where each attribute starts in `bytes`, with its type and length (formats §6.3/§6.4).
    func attributeOffsets() throws -> [(offset: Int, type: UInt32, length: Int)] {
        guard let first = bytes.littleEndian(UInt16.self, at: 20).map(Int.init),
            let used = bytes.littleEndian(UInt32.self, at: 24).map(Int.init), used <= bytes.count, first >= 24
        else { throw FormatError(.outOfRange, structure: "MFT record \(number)", field: "bytes used", "header does not fit") }
        var out: [(offset: Int, type: UInt32, length: Int)] = []
        var position = first
        while position + 8 <= used, let type = bytes.littleEndian(UInt32.self, at: position), type != 0xFFFF_FFFF {
            guard let length = bytes.littleEndian(UInt32.self, at: position + 4).map(Int.init), length >= 16, length % 8 == 0,
                position + length <= used, out.count < MFTRecord.maxAttributes
            else { throw FormatError(.outOfRange, structure: "MFT record \(number)", field: "attribute length", offset: UInt64(position), "bad attribute") }
            out.append((position, type, length))
            position += length
        }
        return out
    }

    /// Rewrites the non-resident attribute at `offset` with a new run list and sizes, moving the
    /// attributes behind it. Throws (leaving `self` unchanged) when the record has no room.
    ///
    /// ```
    /// non-resident header: 4 length u32  24 highest VCN  32 runlist offset u16
    ///                      40 allocated size  48 data size  56 initialized size   (runlist at 32's value)
    /// record header:       24 bytes used u32  28 bytes allocated u32
    /// ```
    mutating func rewriteNonResident(at offset: Int, runlist: [UInt8], highestVCN: UInt64, allocated: UInt64, dataSize: UInt64,
                                     initialized: UInt64) throws {
        guard let oldLength = bytes.littleEndian(UInt32.self, at: offset + 4).map(Int.init),
            let runsOffset = bytes.littleEndian(UInt16.self, at: offset + 32).map(Int.init), runsOffset >= 64, runsOffset < oldLength,
            let used = bytes.littleEndian(UInt32.self, at: 24).map(Int.init),
            let allocatedBytes = bytes.littleEndian(UInt32.self, at: 28).map(Int.init), allocatedBytes <= bytes.count, used <= allocatedBytes
        else { throw FormatError(.outOfRange, structure: "MFT record \(number)", field: "runlist offset", offset: UInt64(offset), "bad attribute header") }
        let newLength = (runsOffset + runlist.count + 7) & ~7
        let newUsed = used - oldLength + newLength
        guard newUsed <= allocatedBytes else {
            throw FormatError(.limitExceeded, structure: "MFT record \(number)", field: "run list",
                "the new run list (\(runlist.count) bytes) needs \(newUsed) bytes in a record of \(allocatedBytes); "
                    + "moving runs into an extension record is not supported")
        }
        var out = Array(bytes[0..<offset + runsOffset])
        out += runlist
        out += [UInt8](repeating: 0, count: newLength - runsOffset - runlist.count)
        out += bytes[(offset + oldLength)..<used]
        out += [UInt8](repeating: 0, count: bytes.count - out.count)
        var w = ByteWriter(capacity: out.count)
        w.write(bytes: out)
        w.setLittleEndian(UInt32(newLength), at: offset + 4)
        w.setLittleEndian(highestVCN, at: offset + 24)
        w.setLittleEndian(allocated, at: offset + 40)
        w.setLittleEndian(dataSize, at: offset + 48)
        w.setLittleEndian(initialized, at: offset + 56)
        w.setLittleEndian(UInt32(newUsed), at: 24)
        bytes = w.bytes
    }

    /// The bytes to put on disk: the update sequence number incremented (never 0 or 0xFFFF, as
    /// ntfs-3g's `ntfs_mst_pre_write_fixup`), each 512-byte stride's last two bytes saved in the
    /// update sequence array and replaced by the number (the inverse of `FixUp.apply`).
    func protected() throws -> [UInt8] {
        guard let usaOffset = bytes.littleEndian(UInt16.self, at: 4).map(Int.init),
            let usaCount = bytes.littleEndian(UInt16.self, at: 6).map(Int.init),
            usaCount >= 1, usaCount - 1 == bytes.count / FixUp.stride, usaOffset >= 8, usaOffset + 2 * usaCount <= FixUp.stride - 2,
            let old = bytes.littleEndian(UInt16.self, at: usaOffset)
        else { throw FormatError(.outOfRange, structure: "MFT record \(number)", field: "update sequence array", "does not cover the record") }
        var usn = old &+ 1
        if usn == 0 || usn == 0xFFFF { usn = 1 }
        var w = ByteWriter(capacity: bytes.count)
        w.write(bytes: bytes)
        w.setLittleEndian(usn, at: usaOffset)
        for i in 1..<usaCount {
            let end = i * FixUp.stride - 2
            w.setLittleEndian(bytes.littleEndian(UInt16.self, at: end) ?? 0, at: usaOffset + 2 * i)
            w.setLittleEndian(usn, at: end)
        }
        return w.bytes
    }
}
