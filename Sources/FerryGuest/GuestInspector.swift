public import FerryDisk
import FerryBinary
import FerryPartitions
import FerryNTFS

/// `ferry inspect`: reads a guest disk offline and read-only (metadata only: partition
/// tables, superblocks, MFT records, registry cells) and says what will happen on KVM.
public enum GuestInspector {
    public static func inspect(_ disk: any BlockDevice) throws -> InspectionReport {
        let table = try PartitionReader.read(disk)
        var report = InspectionReport(
            partitionTable: table.scheme.rawValue, diskSize: disk.size, sectorSize: table.sectorSize,
            diskSignature: table.diskSignature.map { String($0, radix: 16).leftPadded(8) }, diskGUID: table.diskGUID?.description,
            bootCode: table.hasBootCode, wholeDisk: table.scheme != .none, warnings: table.warnings)
        var dynamicDisk = false
        var bitlocker: [Int] = []
        var windowsCandidates: [(Int, UInt64)] = []

        if table.scheme == .none {
            let volume = try FileSystemProbe.identify(disk, at: 0, length: disk.size)
            report.volume = volume
            if let volume {
                // A FAT/NTFS volume records the partition start it was made for (BPB offset 28).
                if ["ntfs", "fat12", "fat16", "fat32"].contains(volume.type) {
                    report.volumeHiddenSectors = try disk.readBytes(at: 0, count: 32).littleEndian(UInt32.self, at: 28).map(UInt64.init)
                }
                if volume.type == "ntfs" { windowsCandidates.append((0, 0)) }
                if volume.type == "bitlocker" { bitlocker.append(0) }
            }
        }
        for partition in table.partitions {
            var fs: FileSystemInfo?
            do {
                fs = partition.isDynamicDisk || (partition.mbrType.map { [0x05, 0x0F, 0x85].contains($0) } ?? false)
                    ? nil : try FileSystemProbe.identify(disk, at: partition.start, length: partition.size)
            } catch {
                report.warnings.append("partition \(partition.index): \(error)")
            }
            if partition.isDynamicDisk { dynamicDisk = true }
            if fs?.type == "ntfs" { windowsCandidates.append((partition.index, partition.start)) }
            if fs?.type == "bitlocker" { bitlocker.append(partition.index) }
            report.partitions.append(
                PartitionReport(
                    index: partition.index, start: partition.start, size: partition.size, startLBA: partition.startLBA,
                    type: partition.typeCode, typeName: partition.typeName,
                    filesystem: fs?.type ?? (partition.isDynamicDisk ? "ldm" : "unknown"), label: fs?.label, uuid: fs?.uuid,
                    aligned: partition.start % 4096 == 0, alignment: partition.alignment.rawValue, bootable: partition.bootable,
                    logical: partition.isLogical))
        }
        for (index, start) in windowsCandidates where report.windows == nil {
            do {
                let volume = try NTFSVolume(device: disk, offset: start)
                report.windows = try WindowsInspector.inspect(volume, partition: index, warnings: &report.warnings)
                report.windows?.bootSectorHiddenSectors = UInt64(volume.bootSector.hiddenSectors)
                report.windows?.bootSectorHeads = volume.bootSector.heads
                report.windows?.partitionStartLBA = table.partitions.first { $0.index == index }?.startLBA
                // blkid reads the label from $Volume's $VOLUME_NAME, for a bare volume as for a partition.
                if let label = try? volume.label() {
                    if index == 0 {
                        report.volume?.label = label
                    } else if let at = report.partitions.firstIndex(where: { $0.index == index }) {
                        report.partitions[at].label = label
                    }
                }
            } catch {
                report.warnings.append("NTFS volume in partition \(index) could not be read: \(error)")
            }
        }
        if table.scheme != .none {
            report.bootLoader = try BootLoaderProbe.identify(disk, table: table, partitions: report.partitions)
        }
        report.verdicts = Verdicts.judge(report, dynamicDisk: dynamicDisk, bitlocker: bitlocker)
        return report
    }
}

/// Recognises the boot loader from strings in the MBR boot code, or the GPT partitions it needs.
enum BootLoaderProbe {
    static func identify(_ disk: any BlockDevice, table: PartitionTable, partitions: [PartitionReport]) throws -> String? {
        if table.scheme == .gpt {
            if partitions.contains(where: { $0.typeName == "EFI system" }) { return "UEFI (EFI system partition)" }
            if partitions.contains(where: { $0.typeName == "BIOS boot" }) { return "GRUB (BIOS boot partition)" }
        }
        guard table.hasBootCode else { return nil }
        let code = Array(try disk.readBytes(at: 0, count: 440))
        let text = String(decoding: code.map { $0 >= 0x20 && $0 < 0x7F ? $0 : 0x20 }, as: UTF8.self)
        if text.contains("GRUB") { return "GRUB" }
        if text.contains("LILO") { return "LILO" }
        if text.contains("SYSLINUX") || text.contains("ISOLINUX") { return "SYSLINUX" }
        if text.contains("Invalid partition table") || text.contains("Missing operating system") { return "Windows/DOS MBR" }
        return "unknown boot code"
    }
}
