import FerryGuest
import FerryTarget

extension GuestFacts {
    /// The facts the decision table reads, from `ferry inspect`'s report of the system disk.
    init(_ report: InspectionReport) {
        let linux = report.partitions.contains { ["ext2", "ext3", "ext4", "xfs", "btrfs", "lvm2"].contains($0.filesystem) }
            || ["ext2", "ext3", "ext4", "xfs", "btrfs", "lvm2"].contains(report.volume?.type ?? "")
        let w = report.windows
        self.init(
            os: w != nil ? .windows : (linux ? .linux : .unknown), windowsVersion: w?.version, productName: w?.productName,
            architecture: w?.architecture, hal: w?.hal, halMultiprocessor: w?.halMultiprocessor, halACPI: w?.halACPI,
            rtcLocalTime: w?.rtcLocalTime, partitionTable: report.partitionTable,
            efiSystemPartition: report.partitions.contains { $0.typeName == "EFI system" },
            verdicts: Dictionary(report.verdicts.map { ($0.id, $0.ok) }, uniquingKeysWith: { $1 }),
            fixes: Dictionary(report.verdicts.filter { !$0.ok && !$0.fix.isEmpty }.map { ($0.id, $0.fix) }, uniquingKeysWith: { $1 }))
    }
}
