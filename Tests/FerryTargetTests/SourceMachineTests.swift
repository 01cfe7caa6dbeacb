@testable import FerryTarget
import Testing

/// The machine read from real-shaped ESXi 5–8 and Workstation files (Fixtures/README.md).
@Suite struct SourceMachineTests {
    @Test func esxi5Windows2003() throws {
        let m = try Fixture.machine("esxi5-win2003")
        #expect(m.name == "legacy-erp")
        #expect(m.guestOS == "winnetenterprise")
        #expect(m.virtualHardwareVersion == 8)
        #expect(m.firmware == .bios && !m.secureBoot)
        #expect(m.vcpus == 2 && m.coresPerSocket == 2 && m.memoryMB == 3072)
        #expect(m.biosUUID == "564d6a1b-3c8e-2f44-9a10-7b21c3de550f")
        #expect(m.disks == [SourceDisk(bus: .scsi, controller: 0, unit: 0, controllerType: "lsilogic", fileName: "legacy-erp.vmdk", mode: "persistent", snapshot: false)])
        #expect(m.cdroms.map(\.label) == ["ide1:0"] && m.cdroms[0].deviceType == "cdrom-raw")
        #expect(m.nics == [SourceNIC(index: 0, virtualDev: "e1000", mac: "00:0c:29:de:55:0f", macSource: "generatedAddress", addressType: "generated", networkName: "VM Network", connectionType: nil)])
        #expect(m.time == ["tools.syncTime": "FALSE", "rtc.diffFromUTC": "3600"])
        #expect(m.warnings.isEmpty, "\(m.warnings)")
        // Keys ferry does not read are kept, in file order.
        let other = m.otherKeys.map(\.key)
        #expect(other.contains("hostCPUID.0") && other.contains("sched.scsi0:0.shares") && other.contains("pciBridge4.virtualDev"))
        #expect(!other.contains("scsi0.virtualDev") && !other.contains("ethernet0.pciSlotNumber") && !other.contains("displayName"))
    }

    @Test func staticMACWinsWhenAddressTypeIsStatic() throws {
        let m = try Fixture.machine("esxi6-winxp")
        #expect(m.nics.first?.mac == "00:50:56:3a:10:02" && m.nics.first?.macSource == "address")
        #expect(m.memoryMB == 512)  // `memSize` and `memsize` are one key
        #expect(m.cdroms.first?.fileName == "/vmfs/volumes/52d3c9e1-iso/winxp-sp3.iso")
    }

    @Test func esxi7TwoDisksTwoNICsIndependentDisk() throws {
        let m = try Fixture.machine("esxi7-win2008")
        #expect(m.disks.map(\.label) == ["scsi0:0", "scsi0:1"])
        #expect(m.disks.map(\.controllerType) == ["lsisas1068", "lsisas1068"])
        #expect(m.disks[1].mode == "independent-persistent")
        #expect(m.nics.map(\.mac) == ["00:50:56:81:20:01", "00:50:56:81:20:02"])
        #expect(m.vcpus == 4 && m.coresPerSocket == 2)
    }

    @Test func esxi8EFIFourDisksThreeNICs() throws {
        let m = try Fixture.machine("esxi8-win2019-efi")
        #expect(m.firmware == .efi && m.secureBoot)
        #expect(m.disks.map(\.label) == ["scsi0:0", "scsi0:1", "scsi1:0", "nvme0:0"])
        #expect(m.cdroms.map(\.label) == ["sata0:0"])
        #expect(m.nics.map(\.virtualDev) == ["vmxnet3", "vmxnet3", "e1000e"])
        #expect(m.nics[2].mac == "00:50:56:3f:01:03")
        #expect(m.warnings == ["scsi1:0 fileName \"/vmfs/volumes/ds-logs/dc01/dc01_2.vmdk\" is an absolute path (another datastore?): give that disk on the command line"])
    }

    @Test func snapshotDeltaIsFlagged() throws {
        let m = try Fixture.machine("esxi7-ubuntu-snapshot")
        #expect(m.disks.map(\.snapshot) == [true])
        #expect(m.nics.count == 2)  // ethernet2.present = FALSE
        #expect(m.warnings.contains { $0.contains("consolidate") })
    }

    @Test func workstationSATAAndCRLF() throws {
        let m = try Fixture.machine("workstation17-debian-efi")
        #expect(m.firmware == .efi && !m.secureBoot)
        #expect(m.disks.map(\.label) == ["sata0:0"] && m.disks[0].fileName == "Debian 12.vmdk")
        #expect(m.cdroms.first?.fileName == "C:\\ISO\\debian-12.iso")
        #expect(m.nics.first?.connectionType == "nat" && m.nics.first?.mac == "00:0c:29:4f:8e:35")
        #expect(m.otherKeys.map(\.key).contains("sound.virtualDev"))
    }

    @Test func defaultsAndBadNumbersAreWarnings() throws {
        let m = try Fixture.vmx("numvcpus = \"lots\"\nuuid.bios = \"zz\"\nfirmware = \"coreboot\"\n")
        #expect(m.vcpus == 1 && m.memoryMB == 32 && m.firmware == .bios && m.biosUUID == nil)
        #expect(m.warnings.count == 4, "\(m.warnings)")
    }

    @Test func pathsLeavingTheVMDirectoryAreWarnings() throws {
        let m = try Fixture.vmx("scsi0.present = \"TRUE\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"../../etc/passwd\"\n")
        #expect(m.disks.first?.fileName == "../../etc/passwd")
        #expect(m.warnings.contains { $0.contains("contains '..'") })
    }

    @Test func deviceOfADisabledControllerIsIgnored() throws {
        let m = try Fixture.vmx("scsi1.present = \"FALSE\"\nscsi1:0.present = \"TRUE\"\nscsi1:0.fileName = \"x.vmdk\"\n")
        #expect(m.disks.isEmpty)
        #expect(m.warnings.contains("scsi1:0 is present but its controller scsi1 is not; ignored"))
    }

    @Test func snapshotNames() {
        #expect(SourceMachine.isSnapshotName("vm-000001.vmdk"))
        #expect(SourceMachine.isSnapshotName("/vmfs/volumes/x/My VM-000123.vmdk"))
        #expect(!SourceMachine.isSnapshotName("vm-flat.vmdk"))
        #expect(!SourceMachine.isSnapshotName("vm_1.vmdk"))
        #expect(!SourceMachine.isSnapshotName("vm-00001.vmdk"))
    }
}

extension SourceMachineTests {
    /// A hostile file with thousands of device slots: the first `maxDisks` are read, the rest
    /// are named in one warning (and marking their keys costs each slot its own keys only).
    @Test func thousandsOfSlotsAreBounded() throws {
        var text = "scsi0.present = \"TRUE\"\n"
        for c in 0..<40 { for u in 0..<100 { text += "scsi\(c):\(u).present = \"TRUE\"\nscsi\(c):\(u).fileName = \"d\(c)-\(u).vmdk\"\n" } }
        let m = try Fixture.vmx(text)
        #expect(m.disks.count == SourceMachine.maxDisks)
        #expect(m.warnings.contains { $0.hasPrefix("more than \(SourceMachine.maxDisks) disk and CD-ROM slots") })
    }
}
