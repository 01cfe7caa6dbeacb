public import FerryDisk
import FerryBinary

/// Reads a disk's partition table: GPT (with CRCs and the backup header), else MBR with its
/// EBR chain, else none (a bare volume or an empty disk). Reads only a few sectors.
public enum PartitionReader {
    /// A chain of more EBRs than this is refused (Linux allows 60ish logicals in practice).
    public static let maxLogicalPartitions = 256

    public static func read(_ disk: any BlockDevice) throws -> PartitionTable {
        let sectorSize = disk.logicalSectorSize
        guard disk.size >= 512 else { return PartitionTable(scheme: .none, sectorSize: sectorSize) }
        let sector0 = try disk.readBytes(at: 0, count: 512)
        // GPT first (a protective MBR is also a valid MBR), at the device's sector size, then the other one.
        for size in [sectorSize, sectorSize == 512 ? 4096 : 512] where disk.size >= UInt64(size) * 3 {
            let bytes = try disk.readBytes(at: UInt64(size), count: size)
            if bytes.starts(with: GPTHeader.signature) {
                return try readGPT(disk, sectorSize: size, primary: bytes, sector0: sector0)
            }
        }
        if BootSectorProbe.volumeKind(sector0) != nil { return PartitionTable(scheme: .none, sectorSize: sectorSize) }
        guard let mbr = try? MasterBootRecord(parsing: sector0), mbr.hasValidStatusBytes else {
            return PartitionTable(scheme: .none, sectorSize: sectorSize)
        }
        return try readMBR(disk, mbr: mbr, sectorSize: sectorSize)
    }

    // MARK: MBR

    static func readMBR(_ disk: any BlockDevice, mbr: MasterBootRecord, sectorSize: Int) throws -> PartitionTable {
        var table = PartitionTable(
            scheme: .mbr, sectorSize: sectorSize, diskSignature: mbr.diskSignature, hasBootCode: mbr.hasBootCode)
        let diskSectors = disk.size / UInt64(sectorSize)
        for (i, entry) in mbr.entries.enumerated() where !entry.isEmpty {
            let partition = Partition(
                index: i + 1, startLBA: UInt64(entry.startLBA), sectorCount: UInt64(entry.sectorCount),
                sectorSize: sectorSize, mbrType: entry.type, bootable: entry.isBootable)
            if UInt64(entry.startLBA) + UInt64(entry.sectorCount) > diskSectors {
                table.warnings.append("partition \(i + 1) ends past the end of the disk (truncated image?)")
            }
            table.partitions.append(partition)
        }
        if let extended = mbr.entries.first(where: { $0.isExtended && !$0.isEmpty }) {
            readLogicals(disk, extendedStart: UInt64(extended.startLBA), sectorSize: sectorSize, into: &table)
        }
        return table
    }

    /// Walks the EBR chain: entry 1 of each EBR is a logical partition relative to that EBR,
    /// entry 2 links to the next EBR relative to the start of the extended partition.
    static func readLogicals(_ disk: any BlockDevice, extendedStart: UInt64, sectorSize: Int, into table: inout PartitionTable) {
        var ebrLBA = extendedStart
        var visited: Set<UInt64> = []
        var index = 5
        while true {
            guard visited.insert(ebrLBA).inserted else {
                table.warnings.append("EBR chain loops back to LBA \(ebrLBA); stopped")
                return
            }
            guard visited.count <= maxLogicalPartitions else {
                table.warnings.append("EBR chain longer than \(maxLogicalPartitions); stopped")
                return
            }
            let offset = ebrLBA.multipliedReportingOverflow(by: UInt64(sectorSize))
            guard !offset.overflow, let bytes = try? disk.readBytes(at: offset.partialValue, count: 512),
                let ebr = try? MasterBootRecord(parsing: bytes, offset: offset.partialValue)
            else {
                table.warnings.append("EBR at LBA \(ebrLBA) is unreadable or has no 55 AA; logical partitions stop here")
                return
            }
            let logical = ebr.entries[0]
            if !logical.isEmpty {
                table.partitions.append(
                    Partition(
                        index: index, startLBA: ebrLBA + UInt64(logical.startLBA), sectorCount: UInt64(logical.sectorCount),
                        sectorSize: sectorSize, mbrType: logical.type, bootable: logical.isBootable, isLogical: true))
                index += 1
            }
            let link = ebr.entries[1]
            guard link.isExtended, !link.isEmpty else { return }
            ebrLBA = extendedStart + UInt64(link.startLBA)
        }
    }

    // MARK: GPT

    static func readGPT(_ disk: any BlockDevice, sectorSize: Int, primary: [UInt8], sector0: [UInt8]) throws -> PartitionTable {
        let ss = UInt64(sectorSize)
        let lastLBA = disk.size / ss - 1
        var warnings: [String] = []
        let mbr = try? MasterBootRecord(parsing: sector0)
        if mbr?.isProtective != true { warnings.append("GPT disk without a protective MBR (0xEE entry)") }
        if let mbr, mbr.entries.filter({ !$0.isEmpty }).count > 1, mbr.isProtective {
            warnings.append("hybrid MBR: the protective MBR also lists other partitions")
        }
        let primaryHeader = try? GPTHeader(parsing: primary, offset: ss)
        var backupHeader: GPTHeader?
        let backupLBA = primaryHeader.map { $0.alternateLBA } ?? lastLBA
        if backupLBA <= lastLBA, let bytes = try? disk.readBytes(at: backupLBA * ss, count: sectorSize) {
            backupHeader = try? GPTHeader(parsing: bytes, offset: backupLBA * ss)
        }
        if backupHeader?.headerCRCValid != true {
            warnings.append("backup GPT header missing or invalid at LBA \(backupLBA) (disk resized or truncated?)")
        } else if backupLBA != lastLBA {
            warnings.append("backup GPT header is at LBA \(backupLBA), not the last LBA \(lastLBA) (disk grown?)")
        }
        let header: GPTHeader
        if let primaryHeader, primaryHeader.headerCRCValid {
            header = primaryHeader
        } else if let backupHeader, backupHeader.headerCRCValid {
            warnings.append("primary GPT header CRC is wrong; using the backup header")
            header = backupHeader
        } else {
            throw FormatError(
                .badChecksum, structure: "GPT header", field: "header CRC32", offset: ss,
                "neither the primary nor the backup GPT header has a valid CRC")
        }
        let arrayOffset = try Checked.multiply(header.entriesLBA, ss, "partition entry LBA", structure: "GPT header")
        let array = try disk.readBytes(at: arrayOffset, count: header.entryArrayBytes)
        if CRC32.checksum(array) != header.entryArrayCRC32 {
            warnings.append("GPT partition entry array CRC is wrong")
        }
        var partitions: [Partition] = []
        for i in 0..<Int(header.entryCount) {
            var reader = ByteReader(
                Array(array[i * Int(header.entrySize)..<(i + 1) * Int(header.entrySize)]),
                structure: "GPT entry \(i + 1)", baseOffset: arrayOffset + UInt64(i) * UInt64(header.entrySize))
            let entry = try GPTEntry(parsing: &reader)
            if entry.isUnused { continue }
            guard entry.firstLBA <= entry.lastLBA else {
                warnings.append("GPT entry \(i + 1) has first LBA \(entry.firstLBA) after last LBA \(entry.lastLBA); ignored")
                continue
            }
            // first 0, last 2^64-1 is 2^64 sectors: one more than a UInt64 counts.
            let (sectorCount, tooLong) = (entry.lastLBA - entry.firstLBA).addingReportingOverflow(1)
            guard !tooLong else {
                warnings.append("GPT entry \(i + 1) spans every 64-bit LBA (\(entry.firstLBA)…\(entry.lastLBA)); ignored")
                continue
            }
            if entry.lastLBA > lastLBA { warnings.append("partition \(i + 1) ends past the end of the disk") }
            partitions.append(
                Partition(
                    index: i + 1, startLBA: entry.firstLBA, sectorCount: sectorCount,
                    sectorSize: sectorSize, gptType: entry.typeGUID, name: entry.name.isEmpty ? nil : entry.name,
                    bootable: entry.isLegacyBootable))
        }
        return PartitionTable(
            scheme: .gpt, sectorSize: sectorSize, partitions: partitions, diskSignature: nil, diskGUID: header.diskGUID,
            hasBootCode: mbr?.hasBootCode ?? false, warnings: warnings)
    }
}
