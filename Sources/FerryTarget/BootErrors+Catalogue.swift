extension BootError {
    /// Every entry, in the order `ferry explain --list` prints them.
    public static let catalogue: [BootError] = [
        BootError(
            code: "0x7B", aliases: ["0x0000007B", "INACCESSIBLE_BOOT_DEVICE", "7b"], title: "STOP 0x0000007B INACCESSIBLE_BOOT_DEVICE",
            causes: [
                "the disk controller the VM presents has no boot-start driver in the guest (no CriticalDeviceDatabase entry for PCI\\VEN_8086&DEV_7010 on IDE, no viostor on VirtIO; KB314082)",
                "a boot-start (Start=0) driver's .sys file is missing",
                "the disk is on a bus the guest has no driver for (q35 AHCI or VirtIO for Windows 2000/XP/2003)",
            ],
            verdicts: ["boot-ide", "boot-virtio-blk", "boot-virtio-scsi", "system-hive"],
            fix: [
                "IDE: apply MergeIDE offline (the fix of verdict boot-ide); the plan's disk-bus is ide for XP/2003 without viostor",
                "VirtIO: inject viostor (verdict boot-virtio-blk), or keep disk-bus ide (Ganeti disk_type=ide)",
                "keep machine pc (i440FX), never q35, for Windows 5.x",
            ]),
        BootError(
            code: "0x0A", aliases: ["0x0000000A", "IRQL_NOT_LESS_OR_EQUAL", "a"], title: "STOP 0x0000000A IRQL_NOT_LESS_OR_EQUAL at boot",
            causes: [
                "old Windows on a CPU model with features its kernel or HAL mishandles (host passthrough, recent models)",
                "intelppm/amdppm touching MSRs the virtual CPU does not have",
            ],
            verdicts: ["cpu-model", "intelppm"],
            fix: ["use the plan's cpu (qemu32/qemu64 for Windows 5.x; Ganeti cpu_type, QEMU -cpu)", "disable intelppm (verdict intelppm: Services\\intelppm Start=4)"]),
        BootError(
            code: "0x7E", aliases: ["0x0000007E", "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED", "7e"], title: "STOP 0x0000007E SYSTEM_THREAD_EXCEPTION_NOT_HANDLED",
            causes: [
                "a driver for the old hardware (VMware Tools' vmxnet/vmci/vmmouse, a storage filter) loads and crashes on the new devices",
                "intelppm/processor driver on a different CPU vendor",
            ],
            verdicts: ["vmware-tools", "intelppm"],
            fix: ["uninstall VMware Tools on the source before the final copy (verdict vmware-tools)", "disable intelppm (verdict intelppm)"]),
        BootError(
            code: "0x50", aliases: ["0x00000050", "PAGE_FAULT_IN_NONPAGED_AREA", "50"], title: "STOP 0x00000050 PAGE_FAULT_IN_NONPAGED_AREA",
            causes: ["a driver for VMware hardware (VMware Tools) or an antivirus filter faults on the new devices", "a damaged system file or hive from a crash-consistent copy"],
            verdicts: ["vmware-tools", "dirty", "hive-dirty"],
            fix: ["uninstall VMware Tools on the source (verdict vmware-tools)", "copy again from a cleanly shut down source (verdicts dirty, hive-dirty)"]),
        BootError(
            code: "0xC0000221", aliases: ["STATUS_IMAGE_CHECKSUM_MISMATCH", "c0000221"], title: "STOP 0xC0000221 STATUS_IMAGE_CHECKSUM_MISMATCH",
            causes: ["a driver or system DLL is damaged: the copy was taken while Windows ran, or the image lost data", "a hive or file half written when the source crashed"],
            verdicts: ["dirty", "hive-dirty", "hibernated"],
            fix: ["shut the source down cleanly and copy again; `ferry copy` verifies the copy end to end", "check the copy with `ferry checksum` on both ends"]),
        BootError(
            code: "disk-read-error", aliases: ["A disk read error occurred", "disk read error"], title: "\"A disk read error occurred. Press Ctrl+Alt+Del to restart\"",
            causes: [
                "the NTFS boot sector's hidden sectors (VBR 0x1C) do not match the partition start (a partition copied into a new table)",
                "Windows 2000/XP boot code doing CHS arithmetic with a heads count the new BIOS geometry does not match",
            ],
            verdicts: ["hidden-sectors", "ntfs-heads", "whole-disk"],
            fix: ["copy the whole original disk (verdict whole-disk)", "set the hidden sectors / heads as the fixes of verdicts hidden-sectors and ntfs-heads say"]),
        BootError(
            code: "ntldr-missing", aliases: ["NTLDR is missing", "ntldr"], title: "\"NTLDR is missing\"",
            causes: ["the active partition is not the one holding NTLDR and boot.ini", "the boot sector reads the wrong volume (hidden sectors)", "the disk order changed and the BIOS boots another disk"],
            verdicts: ["hidden-sectors", "whole-disk"],
            fix: ["boot the plan's disk 0 (bootindex 0); mark the system partition active", "fix hidden sectors (verdict hidden-sectors)"]),
        BootError(
            code: "missing-os", aliases: ["Missing operating system", "missing operating system"], title: "\"Missing operating system\" (MBR boot code)",
            causes: ["no active partition, or the active one has no boot sector", "the disk was copied without its first sectors, or a bare partition was given as the disk"],
            verdicts: ["whole-disk", "boot-code"],
            fix: ["copy the whole disk including sector 0 (verdicts whole-disk, boot-code)"]),
        BootError(
            code: "hal-dll", aliases: ["HAL.DLL missing", "hal.dll", "hal"], title: "\"<Windows root>\\system32\\hal.dll is missing or corrupt\"",
            causes: ["boot.ini names the wrong partition (partition numbering changed: another disk first, a new partition)", "the HAL file itself is damaged"],
            verdicts: ["whole-disk", "vcpus"],
            fix: ["keep the disk order of the .vmx (the plan's disk 0 boots)", "do not re-partition; copy the whole disk"]),
        BootError(
            code: "grub-rescue", aliases: ["GRUB rescue", "grub rescue>", "grub"], title: "GRUB drops to \"grub rescue>\" (error: unknown filesystem / no such partition)",
            causes: ["GRUB's core image looks for /boot by UUID or partition number that changed", "the BIOS-boot or EFI partition was not copied; the firmware type changed (UEFI guest booted as BIOS)"],
            verdicts: ["linux-boot", "whole-disk"],
            fix: ["copy the whole disk; boot it with the plan's firmware (the .vmx's firmware = efi → OVMF)"]),
        BootError(
            code: "dracut-emergency", aliases: ["dracut emergency shell", "dracut", "emergency shell", "initramfs"], title: "dracut (or initramfs-tools) emergency shell: root device not found",
            causes: ["the initramfs has no driver for the new disk bus (virtio_blk, virtio_scsi, ahci) because it was built for VMware's pvscsi/mptspi", "/etc/fstab or root= names a device path (/dev/sda1) that became /dev/vda1"],
            verdicts: ["linux-boot"],
            fix: ["boot once with the plan's disk-bus set to sata (or ide), rebuild the initramfs with virtio (dracut -f --add-drivers 'virtio_blk virtio_scsi'), then switch to virtio", "use UUID= in fstab and root="]),
        BootError(
            code: "vfs-unable-to-mount-root", aliases: ["kernel panic VFS unable to mount root", "VFS: Unable to mount root fs", "unable to mount root"], title: "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
            causes: ["no initramfs, or one without the disk bus driver", "Ganeti's kernel_path boots its own kernel with root_path=/dev/vda1 instead of the guest's"],
            verdicts: ["linux-boot"],
            fix: ["Ganeti: kernel_path= (empty, as the plan renders) so the guest's own boot loader runs", "start on sata/ide and rebuild the initramfs as for the dracut shell"]),
    ]
}
