import FerryBinary

/// Multi-sector transfer protection (libfsntfs "fix-up values"; ntfs-3g `mst.c`).
///
/// The update sequence array at `usaOffset` holds the update sequence number (USN) and then
/// one saved u16 per 512-byte stride: the last two bytes of every stride must equal the USN
/// (else the write was torn) and are replaced by the saved value. The stride is always 512,
/// whatever the sector size.
public enum FixUp {
    public static let stride = 512

    public static func apply(_ bytes: inout [UInt8], structure: String, offset: UInt64) throws {
        guard let usaOffset = bytes.littleEndian(UInt16.self, at: 4).map(Int.init),
            let usaCount = bytes.littleEndian(UInt16.self, at: 6).map(Int.init)
        else { throw FormatError(.truncated, structure: structure, offset: offset, "too short for an update sequence array") }
        let strides = bytes.count / stride
        guard usaCount >= 1, usaCount - 1 <= strides, usaOffset >= 8, usaOffset % 2 == 0, usaOffset + usaCount * 2 <= bytes.count,
            usaOffset + usaCount * 2 <= stride - 2
        else {
            throw FormatError(.outOfRange, structure: structure, field: "update sequence array", offset: offset + 4,
                "array at \(usaOffset) with \(usaCount) entries does not fit the \(bytes.count)-byte record")
        }
        let usn0 = bytes[usaOffset], usn1 = bytes[usaOffset + 1]
        for i in 1..<usaCount {
            let end = i * stride - 2
            guard bytes[end] == usn0, bytes[end + 1] == usn1 else {
                throw FormatError(.badChecksum, structure: structure, field: "update sequence number", offset: offset + UInt64(end),
                    "stride \(i) does not end with the update sequence number (torn write)")
            }
            bytes[end] = bytes[usaOffset + 2 * i]
            bytes[end + 1] = bytes[usaOffset + 2 * i + 1]
        }
    }
}
