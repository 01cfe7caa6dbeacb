import FerryDisk
import FerryNTFS
import Foundation

/// The demo's sample VM disk: an MBR partition table laid out as Windows 2003's installer
/// does (one active partition at LBA 63, 255 heads, 63 sectors per track), an NTFS volume made
/// by ferry's own formatter holding `SampleGuest`'s Windows, and a lot of never-written space,
/// like most real VM disks.
enum SampleDisk {
    static let size: UInt64 = 256 << 20
    static let partitionStart: UInt64 = 63

    /// Bytes of file data on the guest's volume.
    static var fileBytes: UInt64 { SampleGuest.files().values.reduce(0) { $0 + UInt64($1.count) } }

    /// An ESXi descriptor for a thick disk whose bytes are in `flatName` (createType "vmfs").
    static func descriptor(flatName: String) -> String {
        let sectors = size / 512
        return """
            # Disk DescriptorFile
            version=1
            encoding="UTF-8"
            CID=7a3c9e11
            parentCID=ffffffff
            createType="vmfs"

            # Extent description
            RW \(sectors) VMFS "\(flatName)"

            # The Disk Data Base
            #DDB

            ddb.adapterType = "lsilogic"
            ddb.geometry.cylinders = "\(sectors / (255 * 63))"
            ddb.geometry.heads = "255"
            ddb.geometry.sectors = "63"
            ddb.virtualHWVersion = "8"

            """
    }

    /// The VM's configuration as ESXi 5 writes it (the parts `ferry plan` reads, and a few it does not).
    static func vmx(descriptorName: String) -> String {
        """
        .encoding = "UTF-8"
        config.version = "8"
        virtualHW.version = "8"
        displayName = "filesrv03"
        guestOS = "winnetenterprise"
        numvcpus = "2"
        cpuid.coresPerSocket = "1"
        memsize = "2048"
        scsi0.present = "TRUE"
        scsi0.virtualDev = "lsilogic"
        scsi0:0.present = "TRUE"
        scsi0:0.fileName = "\(descriptorName)"
        scsi0:0.deviceType = "scsi-hardDisk"
        ethernet0.present = "TRUE"
        ethernet0.virtualDev = "e1000"
        ethernet0.networkName = "VM Network"
        ethernet0.addressType = "generated"
        ethernet0.generatedAddress = "00:0c:29:5a:3c:9e"
        uuid.bios = "56 4d 5a 3c 9e 11 7a 3c-9e 11 5a 3c 9e 11 7a 3c"
        rtc.diffFromUTC = "3600"
        tools.syncTime = "FALSE"
        sched.cpu.shares = "normal"

        """
    }

    /// Writes the sample disk to `path` as a sparse file.
    static func write(to path: String) throws {
        let device = try FileDevice.create(path, size: size)
        defer { try? device.close() }
        let mbr = masterBootRecord()
        try mbr.withUnsafeBytes { try device.write($0, at: 0) }
        var formatter = NTFSFormatter(label: "SYSTEM", hiddenSectors: UInt32(partitionStart))
        formatter.serialNumber = 0x5A3C_9E11_7A3C_9E11
        try formatter.format(device, at: partitionStart * 512, sectors: size / 512 - partitionStart, files: SampleGuest.files())
        try device.flush()
    }

    /// A classic MBR: 440 bytes of boot code, a disk signature, one active partition
    /// (type 0x07, NTFS/IFS) from LBA 63 to the end, and the 0x55AA signature.
    static func masterBootRecord() -> [UInt8] {
        var sector = [UInt8](repeating: 0, count: 512)
        let code = Array("FERRY-DEMO boot code: a real MBR holds the loader that finds the active partition.".utf8)
        sector.replaceSubrange(0..<code.count, with: code)
        // Disk signature at 440.
        sector.replaceSubrange(440..<444, with: [0x46, 0x45, 0x52, 0x59])
        let sectors = UInt32(size / 512 - partitionStart)
        var entry: [UInt8] = [0x80, 0x01, 0x01, 0x00, 0x07, 0xFE, 0xFF, 0xFF]
        entry += withUnsafeBytes(of: UInt32(partitionStart).littleEndian, Array.init)
        entry += withUnsafeBytes(of: sectors.littleEndian, Array.init)
        sector.replaceSubrange(446..<462, with: entry)
        sector[510] = 0x55
        sector[511] = 0xAA
        return sector
    }

    /// Text-like data (words from a small vocabulary): compressible, never all-zero.
    static func pseudoRandomText(count: Int, seed: UInt64) -> [UInt8] {
        let words = ["ferry", "disk", "block", "guest", "driver", "registry", "kvm", "esxi", "ganeti", "boot", "sector", "volume"]
            .map { Array($0.utf8) + [0x20] }
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            out += words[Int((state >> 33) % UInt64(words.count))]
        }
        return Array(out.prefix(count))
    }
}
