public import FerryFormats

/// What `ferry inspect` found on a disk and what it means for booting on KVM.
/// Its JSON form is documented in docs/inspect.md; keys are stable.
public struct InspectionReport: Codable, Sendable, Equatable {
    /// "mbr", "gpt" or "none" (a bare volume or an unrecognised disk).
    public var partitionTable: String
    public var diskSize: UInt64
    public var sectorSize: Int
    /// MBR disk signature as 8 hex digits, which Windows ties drive letters to.
    public var diskSignature: String?
    public var diskGUID: String?
    /// The MBR carries boot code.
    public var bootCode: Bool
    /// A boot loader recognised in the MBR boot code or by its partition ("GRUB", "Windows NT", "SYSLINUX").
    public var bootLoader: String?
    /// The image is a whole disk (a partition table, or a bare file system meant as a disk),
    /// not a copy of one partition of a Windows disk.
    public var wholeDisk: Bool
    /// When the image is a bare volume: its file system, and the partition start it was
    /// cut from (NTFS/FAT "hidden sectors"), so a disk can be rebuilt around it.
    public var volume: FileSystemInfo?
    public var volumeHiddenSectors: UInt64?
    public var partitions: [PartitionReport]
    public var windows: WindowsReport?
    public var warnings: [String]
    public var verdicts: [Verdict]
    /// The files the source was read from and their formats (set by `ferry inspect`).
    public var source: SourceChain?

    public init(
        partitionTable: String, diskSize: UInt64, sectorSize: Int, diskSignature: String? = nil, diskGUID: String? = nil,
        bootCode: Bool = false, bootLoader: String? = nil, wholeDisk: Bool, volume: FileSystemInfo? = nil,
        volumeHiddenSectors: UInt64? = nil, partitions: [PartitionReport] = [], windows: WindowsReport? = nil,
        warnings: [String] = [], verdicts: [Verdict] = []
    ) {
        self.partitionTable = partitionTable
        self.diskSize = diskSize
        self.sectorSize = sectorSize
        self.diskSignature = diskSignature
        self.diskGUID = diskGUID
        self.bootCode = bootCode
        self.bootLoader = bootLoader
        self.wholeDisk = wholeDisk
        self.volume = volume
        self.volumeHiddenSectors = volumeHiddenSectors
        self.partitions = partitions
        self.windows = windows
        self.warnings = warnings
        self.verdicts = verdicts
    }

    /// The verdict with `id`, if it was reached.
    public func verdict(_ id: String) -> Verdict? { verdicts.first { $0.id == id } }
}

/// One partition.
public struct PartitionReport: Codable, Sendable, Equatable {
    public var index: Int
    /// Byte offset and size.
    public var start: UInt64
    public var size: UInt64
    public var startLBA: UInt64
    /// MBR type byte ("0x07") or GPT type GUID.
    public var type: String
    public var typeName: String
    /// File system type ("ntfs", "ext4"…) or "unknown".
    public var filesystem: String
    public var label: String?
    public var uuid: String?
    /// Starts on a 4 KiB boundary.
    public var aligned: Bool
    /// "1MiB", "4KiB", "LBA63" (XP/2003 track alignment) or "unaligned".
    public var alignment: String
    public var bootable: Bool
    public var logical: Bool
}

/// One judgement about the guest: an id machines can key on, ok or not, why, and the fix.
public struct Verdict: Codable, Sendable, Equatable {
    public enum Severity: String, Codable, Sendable {
        /// The guest will not boot (or will be damaged) unless fixed.
        case blocker
        /// Likely trouble, or a setting to choose deliberately.
        case warning
        /// Worth knowing; nothing to fix.
        case info
    }

    public var id: String
    public var ok: Bool
    public var severity: Severity
    public var reason: String
    /// One line saying what to do; empty when nothing is needed.
    public var fix: String

    public init(id: String, ok: Bool, severity: Severity, reason: String, fix: String = "") {
        self.id = id
        self.ok = ok
        self.severity = severity
        self.reason = reason
        self.fix = fix
    }
}

/// The Windows installation found on the disk.
public struct WindowsReport: Codable, Sendable, Equatable {
    /// Partition number holding the system root (0 for a bare volume).
    public var partition: Int
    public var systemRoot: String
    public var productName: String?
    public var edition: String?
    /// "5.2", "6.1", "10.0"…
    public var version: String?
    /// True when `version` was inferred from the product name (no `CurrentVersion`).
    public var versionInferred: Bool?
    public var build: String?
    public var servicePack: String?
    /// "x86" or "x64".
    public var architecture: String?
    /// The HAL's hardware id ("acpiapic_mp", "mps_up"…).
    public var hal: String?
    public var halFile: String?
    public var halMultiprocessor: Bool?
    public var halACPI: Bool?
    /// The control set Windows will boot and the verdicts judge: `Select\Default`, else
    /// `Current`, else the lowest existing `ControlSet00N` (see the warnings).
    public var controlSet: String?
    /// `Select\Current` and `Select\Default` when they name existing sets.
    public var currentControlSet: String?
    public var defaultControlSet: String?
    public var computerName: String?
    public var drivers: [DriverReport]
    public var criticalDevices: [CriticalDeviceReport]
    /// Windows keeps the RTC in local time (no RealTimeIsUniversal=1).
    public var rtcLocalTime: Bool
    public var vmwareTools: Bool
    /// Windows ≥ 8 uses DriverDatabase instead of the CriticalDeviceDatabase.
    public var driverDatabase: Bool
    public var hibernated: Bool
    public var volumeDirty: Bool
    /// $LogFile: "empty", "clean", "unclean" (Windows did not dismount) or "unknown".
    public var journal: String = "unknown"
    public var systemHiveDirty: Bool
    /// `Control\CrashControl\AutoReboot` of the current control set (Windows' default is 1:
    /// a STOP error reboots at once, so a 0x7B on the new host is a reboot loop, not a message).
    public var crashAutoReboot: UInt32?
    /// False when the SYSTEM hive (or its current control set) could not be read: the
    /// driver and CDB facts are then unknown, not absent.
    public var systemHiveReadable: Bool = true
    /// The NTFS boot sector's hidden sectors (BPB 0x1C): where the boot code believes the
    /// volume starts. Must equal `partitionStartLBA` or the boot code reads the wrong sectors.
    public var bootSectorHiddenSectors: UInt64?
    /// BPB heads (0x1A), which XP/2000 boot code uses for CHS arithmetic.
    public var bootSectorHeads: UInt16?
    /// Start of the partition holding the system root (nil for a bare volume).
    public var partitionStartLBA: UInt64?
    public var softwareHiveDirty: Bool?
}

/// A storage or CPU driver service.
public struct DriverReport: Codable, Sendable, Equatable {
    public var name: String
    /// True when Services\<name> exists.
    public var installed: Bool
    /// 0 boot, 1 system, 2 automatic, 3 manual, 4 disabled.
    public var start: UInt32?
    public var startName: String?
    public var imagePath: String?
    /// The driver file exists on the volume.
    public var fileExists: Bool
}

/// A CriticalDeviceDatabase entry for a controller KVM can present.
public struct CriticalDeviceReport: Codable, Sendable, Equatable {
    /// "8086:7010".
    public var id: String
    public var device: String
    /// True when a matching CDB key exists.
    public var present: Bool
    /// The matching key ("pci#ven_8086&dev_7010").
    public var key: String?
    public var service: String?
    /// The service is boot-start (Start=0) and its file exists.
    public var serviceReady: Bool
}
