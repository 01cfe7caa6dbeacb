import FerryBinary

/// NTFS attribute type codes used here (libfsntfs "attribute types").
public enum AttributeType: UInt32, Sendable {
    case standardInformation = 0x10
    case attributeList = 0x20
    case fileName = 0x30
    case volumeName = 0x60
    case volumeInformation = 0x70
    case data = 0x80
    case indexRoot = 0x90
    case indexAllocation = 0xA0
    case bitmap = 0xB0
    case reparsePoint = 0xC0
}

/// One attribute inside an MFT record (formats §6.4).
///
/// ```
/// common:        0 type u32  4 length u32  8 non-resident u8  9 name length (UTF-16 units)
///                10 name offset u16  12 flags u16 (0x00FF compressed, 0x4000 encrypted, 0x8000 sparse)  14 instance
/// resident:      16 value length u32  20 value offset u16
/// non-resident:  16 lowest VCN  24 highest VCN  32 runlist offset u16  34 compression unit
///                40 allocated size  48 data size  56 initialized size
/// ```
public struct Attribute: Sendable, Equatable {
    public var type: UInt32
    public var name: String
    public var flags: UInt16
    public var instance: UInt16
    /// The value, for resident attributes.
    public var residentValue: [UInt8]?
    public var lowestVCN: VCN
    public var highestVCN: VCN
    public var dataSize: UInt64
    public var initializedSize: UInt64
    public var allocatedSize: UInt64
    /// The raw mapping pairs, for non-resident attributes.
    public var runlist: [UInt8]

    public var isResident: Bool { residentValue != nil }
    public var isCompressed: Bool { flags & 0x00FF != 0 }
    public var isEncrypted: Bool { flags & 0x4000 != 0 }

    /// Parses the attribute starting at `start` in a fixed-up record; returns it and its length.
    public static func parse(_ record: [UInt8], at start: Int, recordOffset: UInt64) throws -> (Attribute, Int)? {
        var r = ByteReader(record, structure: "NTFS attribute", baseOffset: recordOffset)
        try r.seek(to: start)
        let type = try r.readLittleEndian(UInt32.self, "type")
        if type == 0xFFFF_FFFF { return nil }
        let length = Int(try r.readLittleEndian(UInt32.self, "length"))
        guard length >= 16, length % 8 == 0, start + length <= record.count else {
            throw FormatError(.outOfRange, structure: "NTFS attribute", field: "length", offset: recordOffset + UInt64(start) + 4,
                "length \(length) does not fit the record")
        }
        let body = Array(record[start..<start + length])
        var a = ByteReader(body, structure: "NTFS attribute 0x" + String(type, radix: 16), baseOffset: recordOffset + UInt64(start))
        try a.seek(to: 8)
        let nonResident = try a.readUInt8("non-resident flag") != 0
        let nameLength = Int(try a.readUInt8("name length"))
        let nameOffset = Int(try a.readLittleEndian(UInt16.self, "name offset"))
        let flags = try a.readLittleEndian(UInt16.self, "flags")
        let instance = try a.readLittleEndian(UInt16.self, "instance")
        try a.seek(to: nameOffset, field: "name offset")
        let name = NTFSName.decode(try a.readBytes(nameLength * 2, field: "name"))
        var attribute = Attribute(
            type: type, name: name, flags: flags, instance: instance, residentValue: nil, lowestVCN: 0, highestVCN: 0,
            dataSize: 0, initializedSize: 0, allocatedSize: 0, runlist: [])
        if nonResident {
            try a.seek(to: 16)
            attribute.lowestVCN = VCN(try a.readLittleEndian(UInt64.self, "lowest VCN"))
            attribute.highestVCN = VCN(try a.readLittleEndian(UInt64.self, "highest VCN"))
            let runsOffset = Int(try a.readLittleEndian(UInt16.self, "runlist offset"))
            try a.seek(to: 40)
            attribute.allocatedSize = try a.readLittleEndian(UInt64.self, "allocated size")
            attribute.dataSize = try a.readLittleEndian(UInt64.self, "data size")
            attribute.initializedSize = try a.readLittleEndian(UInt64.self, "initialized size")
            try a.seek(to: runsOffset, field: "runlist offset")
            attribute.runlist = try a.readBytes(a.remaining, field: "runlist")
        } else {
            try a.seek(to: 16)
            let valueLength = Int(try a.readLittleEndian(UInt32.self, "value length"))
            let valueOffset = Int(try a.readLittleEndian(UInt16.self, "value offset"))
            try a.seek(to: valueOffset, field: "value offset")
            attribute.residentValue = try a.readBytes(valueLength, field: "value")
            attribute.dataSize = UInt64(valueLength)
            attribute.initializedSize = UInt64(valueLength)
        }
        return (attribute, length)
    }
}

/// One run of a non-resident attribute: `length` clusters at `lcn`, or a sparse gap (nil).
public struct DataRun: Sendable, Equatable {
    public static let maxVCN: UInt64 = 1 << 42
    public var vcn: VCN
    /// Clusters in the run.
    public var length: UInt64
    public var lcn: LCN?

    public init(vcn: VCN, length: UInt64, lcn: LCN?) {
        self.vcn = vcn
        self.length = length
        self.lcn = lcn
    }

    /// Decodes mapping pairs (formats §6.4): a header byte whose low nibble is the size of the
    /// run length and high nibble the size of the signed LCN delta; 0x00 ends the list.
    /// Every LCN is checked to lie inside a volume of `totalClusters`.
    public static func decode(_ bytes: [UInt8], startVCN: VCN, totalClusters: UInt64, maxRuns: Int = 65536) throws -> [DataRun] {
        var runs: [DataRun] = []
        var i = 0
        var lcn: Int64 = 0
        guard startVCN.value <= maxVCN else { throw FormatError(.outOfRange, structure: "NTFS runlist", field: "lowest VCN", "VCN \(startVCN) is absurd") }
        var vcn = startVCN.value
        while i < bytes.count, bytes[i] != 0 {
            let lengthSize = Int(bytes[i] & 0x0F), deltaSize = Int(bytes[i] >> 4)
            guard lengthSize >= 1, lengthSize <= 8, deltaSize <= 8, i + 1 + lengthSize + deltaSize <= bytes.count else {
                throw FormatError(.outOfRange, structure: "NTFS runlist", offset: UInt64(i), "bad mapping-pair header 0x" + [bytes[i]].hexString)
            }
            var length: UInt64 = 0
            for k in 0..<lengthSize { length |= UInt64(bytes[i + 1 + k]) << (8 * UInt64(k)) }
            var delta: Int64 = 0
            for k in 0..<deltaSize { delta |= Int64(bytes[i + 1 + lengthSize + k]) << (8 * Int64(k)) }
            if deltaSize > 0, deltaSize < 8, bytes[i + lengthSize + deltaSize] & 0x80 != 0 {
                delta -= Int64(1) << (8 * Int64(deltaSize))  // sign-extend
            }
            guard length > 0, length <= totalClusters else {
                throw FormatError(.outOfRange, structure: "NTFS runlist", field: "run length", offset: UInt64(i), "run of \(length) clusters")
            }
            var runLCN: LCN?
            if deltaSize > 0 {
                let (next, overflow) = lcn.addingReportingOverflow(delta)
                guard !overflow, next >= 0, UInt64(next) <= totalClusters, length <= totalClusters - UInt64(next) else {
                    throw FormatError(.outOfRange, structure: "NTFS runlist", field: "LCN", offset: UInt64(i),
                        "run at LCN \(lcn) + \(delta) of \(length) clusters points past the volume (\(totalClusters) clusters)")
                }
                lcn = next
                runLCN = LCN(UInt64(next))
            }
            runs.append(DataRun(vcn: VCN(vcn), length: length, lcn: runLCN))
            guard runs.count <= maxRuns else {
                throw FormatError(.limitExceeded, structure: "NTFS runlist", "more than \(maxRuns) runs")
            }
            let (nextVCN, o) = vcn.addingReportingOverflow(length)
            // 2^42 clusters of at most 2 MiB keeps every VCN × cluster size inside 64 bits.
            guard !o, nextVCN <= maxVCN else { throw FormatError(.outOfRange, structure: "NTFS runlist", field: "VCN", "VCN \(nextVCN) is absurd") }
            vcn = nextVCN
            i += 1 + lengthSize + deltaSize
        }
        return runs
    }
}

/// NTFS names are UTF-16LE without a terminator.
public enum NTFSName {
    public static func decode(_ bytes: [UInt8]) -> String { String(decoding: units(bytes), as: UTF16.self) }

    public static func units(_ bytes: [UInt8]) -> [UInt16] { bytes.utf16LittleEndianUnits }
}
