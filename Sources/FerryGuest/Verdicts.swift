/// The judgements `ferry inspect` makes from the facts (windows-and-targets §2, §6).
/// Each is one `Verdict` with a stable id; `ok == false` means something must be done.
enum Verdicts {
    static func judge(_ report: InspectionReport, dynamicDisk: Bool, bitlocker: [Int]) -> [Verdict] {
        var out: [Verdict] = []
        out.append(wholeDisk(report))
        if report.partitionTable == "mbr", !report.bootCode {
            out.append(Verdict(id: "boot-code", ok: false, severity: .blocker, reason: "the MBR has no boot code: the BIOS has nothing to run",
                fix: "copy the whole source disk including sector 0, or reinstall the boot loader"))
        }
        if dynamicDisk {
            out.append(Verdict(id: "dynamic-disk", ok: false, severity: .blocker,
                reason: "the disk is a Windows dynamic disk (LDM); its volumes cannot be inspected or fixed offline",
                fix: "convert the system disk back to a basic disk on the source before migrating"))
        }
        if !bitlocker.isEmpty {
            out.append(Verdict(id: "bitlocker", ok: false, severity: .blocker,
                reason: "BitLocker-encrypted volume in partition \(bitlocker.map(String.init).joined(separator: ", "))",
                fix: "decrypt or suspend BitLocker on the source before migrating"))
        }
        if let windows = report.windows {
            out += WindowsVerdicts.judge(windows, report: report)
        } else if let linux = linuxVerdict(report) {
            out.append(linux)
        } else {
            out.append(Verdict(id: "os", ok: true, severity: .info, reason: "no Windows installation or Linux file system found"))
        }
        return out
    }

    static func wholeDisk(_ report: InspectionReport) -> Verdict {
        if report.wholeDisk {
            return Verdict(id: "whole-disk", ok: true, severity: .info,
                reason: "the image is a whole disk with a\(report.partitionTable == "mbr" ? "n MBR" : " GPT") partition table")
        }
        guard let volume = report.volume else {
            return Verdict(id: "whole-disk", ok: false, severity: .warning, reason: "no partition table and no known file system",
                fix: "check that this is the right file and format (--format)")
        }
        if ["ntfs", "fat12", "fat16", "fat32", "exfat", "bitlocker"].contains(volume.type) {
            let hidden = report.volumeHiddenSectors.map { " (it was made for a partition starting at LBA \($0))" } ?? ""
            return Verdict(id: "whole-disk", ok: false, severity: .blocker,
                reason: "the image is a bare \(volume.type) partition, not a disk: no MBR, no boot code\(hidden); it will not boot",
                fix: "copy the whole disk (e.g. /dev/sda, not /dev/sda1), or wrap the volume in a partition table at its hidden-sectors start")
        }
        return Verdict(id: "whole-disk", ok: true, severity: .info,
            reason: "the image is an unpartitioned \(volume.type) volume (fine for a Linux data disk or direct kernel boot)")
    }

    static func linuxVerdict(_ report: InspectionReport) -> Verdict? {
        let linux = report.partitions.filter { ["ext2", "ext3", "ext4", "xfs", "btrfs", "lvm2"].contains($0.filesystem) }
        guard !linux.isEmpty || ["ext2", "ext3", "ext4", "xfs", "btrfs", "lvm2"].contains(report.volume?.type ?? "") else { return nil }
        let list = linux.map { "\($0.filesystem) (partition \($0.index))" }.joined(separator: ", ")
        guard report.wholeDisk else {
            return Verdict(id: "linux-boot", ok: true, severity: .info, reason: "Linux file system \(report.volume?.type ?? "") without a boot loader")
        }
        if let loader = report.bootLoader {
            return Verdict(id: "linux-boot", ok: true, severity: .info, reason: "Linux file systems: \(list); boot loader: \(loader)",
                fix: "make sure the initramfs has virtio_blk/virtio_scsi before choosing VirtIO disks (else start on IDE/SATA)")
        }
        return Verdict(id: "linux-boot", ok: false, severity: .warning, reason: "Linux file systems: \(list); no boot loader found in the MBR",
            fix: "install a boot loader (GRUB) or boot the VM with a kernel given on the command line")
    }
}
