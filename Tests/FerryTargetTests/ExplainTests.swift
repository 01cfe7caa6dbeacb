@testable import FerryTarget
import Testing

@Suite struct ExplainTests {
    @Test(arguments: [
        ("0x7B", "0x7B"), ("0x0000007B", "0x7B"), ("stop 0x7b", "0x7B"), ("INACCESSIBLE_BOOT_DEVICE", "0x7B"), ("0x0A", "0x0A"),
        ("0x0000000a", "0x0A"), ("0x7E", "0x7E"), ("0x50", "0x50"), ("0xC0000221", "0xC0000221"),
        ("A disk read error occurred", "disk-read-error"), ("NTLDR is missing", "ntldr-missing"), ("Missing operating system", "missing-os"),
        ("hal.dll", "hal-dll"), ("grub rescue>", "grub-rescue"), ("dracut", "dracut-emergency"),
        ("VFS: Unable to mount root fs", "vfs-unable-to-mount-root"),
    ])
    func lookup(_ query: String, _ code: String) {
        #expect(BootError.lookup(query)?.code == code, "\(query)")
    }

    @Test func unknownCodesAreNotFound() {
        #expect(BootError.lookup("0x12345") == nil)
        #expect(BootError.lookup("") == nil)
        #expect(BootError.lookup("   ") == nil)
    }

    /// Every entry names verdicts inspect really makes (FerryGuest's ids), a cause and a fix.
    @Test func entriesAreComplete() {
        let known: Set = ["boot-ide", "boot-virtio-blk", "boot-virtio-scsi", "system-hive", "cpu-model", "intelppm", "vmware-tools", "dirty",
            "hive-dirty", "hibernated", "hidden-sectors", "ntfs-heads", "whole-disk", "boot-code", "vcpus", "linux-boot"]
        let codes = BootError.catalogue.flatMap { Set(([$0.code] + $0.aliases).map(BootError.normalize)) }
        #expect(Set(codes).count == codes.count, "two entries share a spelling")
        for e in BootError.catalogue {
            #expect(!e.causes.isEmpty && !e.fix.isEmpty && !e.verdicts.isEmpty, "\(e.code)")
            #expect(e.verdicts.allSatisfy(known.contains), "\(e.code): \(e.verdicts)")
        }
    }
}
