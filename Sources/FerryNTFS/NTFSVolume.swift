public import FerryDisk
import FerryBinary
import Synchronization

/// A read-only NTFS volume inside a `BlockDevice` (at `offset`, usually a partition start).
///
/// Records are found through $MFT's own runlist (the MFT is fragmented on real systems),
/// attribute lists are followed into extension records, and every LCN is checked against
/// the volume size before it is read.
public final class NTFSVolume: Sendable {
    public let device: any BlockDevice
    public let offset: UInt64
    public let bootSector: NTFSBootSector
    let map: MFTMap
    let upcaseTable = Mutex<[UInt16]?>(nil)

    public var clusterSize: Int { bootSector.clusterSize }
    public var recordSize: Int { bootSector.recordSize }

    public init(device: any BlockDevice, offset: UInt64 = 0) throws {
        self.device = device
        self.offset = offset
        let boot = try NTFSBootSector(parsing: device.readBytes(at: offset, count: 512), offset: offset)
        bootSector = boot
        let volumeEnd = try Checked.add(offset, boot.volumeSize, "volume size", structure: "NTFS boot sector")
        guard volumeEnd <= device.size + UInt64(boot.bytesPerSector) else {
            throw FormatError(.outOfRange, structure: "NTFS boot sector", field: "total sectors", offset: offset + 40,
                "the volume ends at \(volumeEnd), past the \(device.size)-byte disk")
        }
        guard boot.mftCluster < boot.totalClusters else {
            throw FormatError(.outOfRange, structure: "NTFS boot sector", field: "MFT cluster", offset: offset + 48,
                "$MFT at cluster \(boot.mftCluster) is past the volume")
        }
        // Record 0 sits at the MFT's first cluster; its own $DATA maps the rest of the MFT.
        let firstOffset = offset + boot.mftCluster * UInt64(boot.clusterSize)
        let record0 = try MFTRecord(parsing: device.readBytes(at: firstOffset, count: boot.recordSize), number: 0, offset: firstOffset)
        let bootstrapRuns = try record0.attributes(.data).sorted { $0.lowestVCN < $1.lowestVCN }.flatMap {
            try DataRun.decode($0.runlist, startVCN: $0.lowestVCN, totalClusters: boot.totalClusters)
        }
        guard !bootstrapRuns.isEmpty else {
            throw FormatError(.inconsistent, structure: "MFT record 0", offset: firstOffset, "$MFT has no non-resident $DATA")
        }
        var map = MFTMap(device: device, offset: offset, boot: boot, runs: bootstrapRuns)
        // A fragmented $MFT keeps later runs in extension records named by its attribute list;
        // those records lie in the part the bootstrap runs already map.
        if !record0.attributes(.attributeList).isEmpty {
            let full = try map.stream(of: record0, type: .data)
            map = MFTMap(device: device, offset: offset, boot: boot, runs: full.runs)
        }
        self.map = map
    }

    /// The MFT record `number`, fix-ups applied.
    public func record(_ number: UInt64) throws -> MFTRecord { try map.record(number) }

    /// The stream of attribute `type`/`name` of the file whose base record is `record`.
    public func stream(of record: MFTRecord, type: AttributeType, name: String = "") throws -> NTFSStream {
        try map.stream(of: record, type: type, name: name)
    }

    /// All attributes of a file, its extension records included.
    public func attributes(of record: MFTRecord) throws -> [Attribute] { try map.allAttributes(of: record) }
}

/// Maps MFT record numbers to disk offsets through $MFT's runlist, and assembles streams.
struct MFTMap: Sendable {
    /// Extension records followed per file; a hive fragmented into thousands of runs needs a few dozen.
    static let maxExtensionRecords = 1024
    /// Largest $ATTRIBUTE_LIST value read.
    static let maxAttributeListSize = 1 << 20

    let device: any BlockDevice
    let offset: UInt64
    let boot: NTFSBootSector
    let runs: [DataRun]

    func record(_ number: UInt64) throws -> MFTRecord {
        let recordSize = UInt64(boot.recordSize)
        let byteInMFT = try Checked.multiply(number, recordSize, "record number", structure: "MFT")
        let stream = NTFSStream(
            device: device, volumeOffset: offset, clusterSize: boot.clusterSize, runs: runs, resident: nil,
            dataSize: UInt64.max, initializedSize: UInt64.max, what: "$MFT")
        let (diskOffset, contiguous) = try stream.diskOffset(of: byteInMFT)
        guard let diskOffset else {
            throw FormatError(.outOfRange, structure: "MFT", offset: byteInMFT, "record \(number) lies in a sparse or unmapped part of $MFT")
        }
        let bytes = contiguous >= recordSize
            ? try device.readBytes(at: diskOffset, count: Int(recordSize))
            : try stream.read(at: byteInMFT, count: Int(recordSize))
        return try MFTRecord(parsing: bytes, number: number, offset: diskOffset)
    }

    /// Base-record attributes plus those in the extension records its $ATTRIBUTE_LIST names.
    func allAttributes(of base: MFTRecord) throws -> [Attribute] {
        guard let list = base.attributes(.attributeList).first else { return base.attributes }
        let value: [UInt8]
        if let resident = list.residentValue {
            value = resident
        } else {
            guard list.dataSize <= UInt64(Self.maxAttributeListSize) else {
                throw FormatError(.limitExceeded, structure: "$ATTRIBUTE_LIST", offset: UInt64(base.number), "\(list.dataSize) bytes")
            }
            let runs = try DataRun.decode(list.runlist, startVCN: VCN(0), totalClusters: boot.totalClusters)
            let stream = NTFSStream(
                device: device, volumeOffset: offset, clusterSize: boot.clusterSize, runs: runs, resident: nil,
                dataSize: list.dataSize, initializedSize: list.initializedSize, what: "$ATTRIBUTE_LIST")
            value = try stream.read(at: 0, count: Int(list.dataSize))
        }
        var references: [UInt64] = []
        var position = 0
        while position + 26 <= value.count {
            let length = Int(value.littleEndian(UInt16.self, at: position + 4) ?? 0)
            guard length >= 26, position + length <= value.count else {
                throw FormatError(.outOfRange, structure: "$ATTRIBUTE_LIST entry", field: "length", offset: UInt64(position),
                    "entry length \(length) in record \(base.number)")
            }
            let reference = (value.littleEndian(UInt64.self, at: position + 16) ?? 0) & 0xFFFF_FFFF_FFFF
            if reference != base.number, !references.contains(reference) { references.append(reference) }
            guard references.count <= Self.maxExtensionRecords else {
                throw FormatError(.limitExceeded, structure: "$ATTRIBUTE_LIST", "more than \(Self.maxExtensionRecords) extension records")
            }
            position += length
        }
        var attributes = base.attributes.filter { $0.type != AttributeType.attributeList.rawValue }
        for reference in references {
            let ext = try record(reference)
            guard ext.baseRecordNumber == base.number else {
                throw FormatError(.inconsistent, structure: "MFT record \(reference)", field: "base record reference",
                    "is listed by record \(base.number) but belongs to \(ext.baseRecordNumber)")
            }
            attributes += ext.attributes
        }
        return attributes
    }

    /// Stitches every segment of one attribute (by lowest VCN) into a single stream.
    func stream(of record: MFTRecord, type: AttributeType, name: String = "") throws -> NTFSStream {
        let segments = try allAttributes(of: record).filter { $0.type == type.rawValue && $0.name == name }
            .sorted { $0.lowestVCN < $1.lowestVCN }
        guard let first = segments.first else {
            throw FormatError(.inconsistent, structure: "MFT record \(record.number)",
                "has no attribute 0x\(String(type.rawValue, radix: 16))\(name.isEmpty ? "" : ":" + name)")
        }
        if first.isCompressed || first.isEncrypted {
            throw FormatError(.unsupportedFeature, structure: "MFT record \(record.number)",
                "the attribute is \(first.isEncrypted ? "encrypted" : "compressed")")
        }
        if let resident = first.residentValue {
            return NTFSStream(
                device: device, volumeOffset: offset, clusterSize: boot.clusterSize, runs: [], resident: resident,
                dataSize: UInt64(resident.count), initializedSize: UInt64(resident.count), what: "record \(record.number)")
        }
        var runs: [DataRun] = []
        for segment in segments where !segment.isResident {
            runs += try DataRun.decode(segment.runlist, startVCN: segment.lowestVCN, totalClusters: boot.totalClusters)
        }
        guard first.lowestVCN == VCN(0) else {
            throw FormatError(.inconsistent, structure: "MFT record \(record.number)", "no segment starts at VCN 0")
        }
        return NTFSStream(
            device: device, volumeOffset: offset, clusterSize: boot.clusterSize, runs: runs, resident: nil,
            dataSize: first.dataSize, initializedSize: min(first.initializedSize, first.dataSize), what: "record \(record.number)")
    }
}
