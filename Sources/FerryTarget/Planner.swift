/// The decision table (issue 12 §2, windows-and-targets §2.3, §4.2, §6): from the .vmx and the
/// guest facts, the target's devices. Pure: the same inputs give the same plan.
public enum Planner {
    /// A disk given on the command line (or received), with what opening it told.
    public struct GivenDisk: Sendable, Equatable {
        public var path: String
        public var format: String
        public var size: UInt64?
        public init(path: String, format: String, size: UInt64? = nil) {
            self.path = path
            self.format = format
            self.size = size
        }
    }

    /// The guest family the table is keyed on.
    enum Family: Equatable {
        case windows2000, windowsXP2003, windowsModern, linux, unknown
        var windows: Bool { self == .windows2000 || self == .windowsXP2003 || self == .windowsModern }
        var legacy: Bool { self == .windows2000 || self == .windowsXP2003 }
        var label: String {
            switch self {
            case .windows2000: return "Windows 2000"
            case .windowsXP2003: return "Windows XP/2003"
            case .windowsModern: return "Windows Vista or later"
            case .linux: return "Linux"
            case .unknown: return "unknown"
            }
        }
    }

    /// `vmxDirectory` makes the .vmx's relative disk names absolute (libvirt wants absolute paths).
    public static func plan(
        machine: SourceMachine?, guest: GuestFacts?, disks given: [GivenDisk], vmxDirectory: String? = nil, warnings inputWarnings: [String] = []
    ) -> TargetPlan {
        var choices: [TargetPlan.Choice] = []
        var warnings = inputWarnings + (machine?.warnings ?? [])
        func choose(_ setting: String, _ value: String, _ reason: String, guess: Bool = false) {
            choices.append(TargetPlan.Choice(setting: setting, value: value, reason: reason, guess: guess))
        }
        let (family, familyReason, familyGuess) = Self.family(machine: machine, guest: guest)
        choose("guest", family.label, familyReason, guess: familyGuess)
        let is64 = guest?.architecture.map { $0 == "x64" } ?? machine?.guestOS.map(Self.guestOSIs64)
        let verdict = { (id: String) -> Bool? in guest?.verdicts[id] }

        // Firmware: as the .vmx says; without one, from the disk's ESP.
        let firmware: TargetPlan.Firmware
        if let machine {
            firmware = machine.firmware == .efi ? .uefi : .bios
            choose("firmware", firmware == .uefi ? "uefi (OVMF)" : "bios", "firmware = \(machine.firmware == .efi ? "\"efi\"" : "absent (BIOS)") in the .vmx")
            if firmware == .uefi, guest?.partitionTable == "mbr", guest?.efiSystemPartition == false {
                warnings.append("the .vmx says EFI but the system disk has an MBR and no EFI system partition: check the firmware setting")
            }
        } else if guest?.efiSystemPartition == true {
            firmware = .uefi
            choose("firmware", "uefi (OVMF)", "no .vmx; the disk has an EFI system partition", guess: true)
        } else {
            firmware = .bios
            choose("firmware", "bios", guest == nil ? "no .vmx and no guest facts" : "no .vmx; the disk has no EFI system partition", guess: true)
        }
        let secureBoot = firmware == .uefi && machine?.secureBoot == true
        if secureBoot { choose("secure-boot", "on", "uefi.secureBoot.enabled = \"TRUE\"") }

        // Machine type: i440FX for Windows 5.x (no inbox driver for q35's ICH9 AHCI 8086:2922).
        let machineType: String
        if family.legacy {
            machineType = "pc"
            choose("machine", "pc (i440FX)", "Windows 2000/XP/2003 has no inbox driver for q35's ICH9 AHCI (8086:2922); i440FX gives PIIX3 IDE (8086:7010)")
        } else if secureBoot {
            machineType = "q35"
            choose("machine", "q35", "secure boot needs OVMF with SMM, which QEMU offers on q35 only")
        } else {
            machineType = "pc"
            choose("machine", "pc (i440FX)", "every target supports it and it keeps IDE as a fallback bus")
        }

        // Disk bus.
        let bus: TargetPlan.DiskBus
        switch family {
        case .windows2000:
            bus = .ide
            choose("disk-bus", "ide", "virtio-win has no Windows 2000 drivers; IDE (PIIX3) only" + Self.verdictNote(guest, "boot-ide"), guess: guest == nil)
        case .windowsXP2003, .windowsModern:
            if verdict("boot-virtio-blk") == true {
                bus = .virtio
                choose("disk-bus", "virtio", "verdict boot-virtio-blk: viostor is boot-start with its CDB entry")
            } else if verdict("boot-virtio-scsi") == true {
                bus = .virtioSCSI
                choose("disk-bus", "virtio-scsi", "verdict boot-virtio-scsi: vioscsi is boot-start with its CDB entry")
            } else if family == .windowsModern {
                bus = .sata
                choose("disk-bus", "sata", (guest == nil ? "guest drivers unknown" : "verdict boot-virtio-blk is not ok") + "; Windows Vista and later have inbox AHCI drivers", guess: guest == nil)
            } else {
                bus = .ide
                choose("disk-bus", "ide", (guest == nil ? "guest drivers unknown" : "verdict boot-virtio-blk is not ok (no viostor)") + "; Windows XP/2003 boot from PIIX3 IDE" + Self.verdictNote(guest, "boot-ide"), guess: guest == nil)
            }
        case .linux:
            bus = .virtio
            choose("disk-bus", "virtio", "Linux has virtio_blk since 2.6.25; inspect does not read the initramfs, so check it holds virtio_blk (else use sata)", guess: true)
        case .unknown:
            bus = .ide
            choose("disk-bus", "ide", "guest unknown: IDE is the bus every x86 OS can boot from", guess: true)
        }
        if family.windows, bus == .ide, verdict("boot-ide") == false {
            warnings.append("blocker: the guest is not prepared for IDE and will stop with 0x7B: " + (guest?.fixes["boot-ide"] ?? "apply MergeIDE"))
        }

        // NIC model.
        let nicModel: TargetPlan.NICModel
        switch family {
        case .windows2000:
            nicModel = .rtl8139
            choose("nic-model", "rtl8139", "Windows 2000 has an inbox RTL8139 driver and none for QEMU's e1000 (8086:100e)")
        case .windowsXP2003:
            nicModel = .e1000
            choose("nic-model", "e1000", "Windows XP/2003 have an inbox Intel PRO/1000 driver; virtio-net needs netkvm")
        case .windowsModern:
            nicModel = .e1000
            choose("nic-model", "e1000", "inbox on Windows; install netkvm (virtio-win) and switch to virtio after the first boot")
        case .linux:
            nicModel = .virtio
            choose("nic-model", "virtio", "Linux has virtio_net in every distribution kernel")
        case .unknown:
            nicModel = .e1000
            choose("nic-model", "e1000", "guest unknown: the most widely supported emulated NIC", guess: true)
        }
        let nics = (machine?.nics ?? []).enumerated().map { i, nic in
            TargetPlan.NIC(index: i, model: nicModel, mac: nic.mac, network: nic.networkName)
        }
        if let machine, !machine.nics.isEmpty {
            let from = Set(machine.nics.map { $0.virtualDev ?? "vlance" }).sorted().joined(separator: "/")
            let kept = machine.nics.allSatisfy { $0.mac != nil }
            choose("mac", kept ? "kept" : "partly new", kept ? "ethernetN address/generatedAddress of the .vmx (DHCP reservations, firewall rules and Windows activation keep working)" : "some NICs had no valid MAC")
            if family.windows {
                warnings.append("NIC \(from) → \(nicModel.rawValue): Windows sees a new adapter; static IP settings stay with the old, now hidden adapter — note them before the move")
            } else if family == .linux {
                warnings.append("NIC \(from) → \(nicModel.rawValue): the interface name may change (e.g. ens192 → ens3); check netplan/ifcfg files that name it")
            }
        }

        // CPU.
        let cpu: String
        if family.legacy {
            cpu = is64 == true ? "qemu64" : "qemu32"
            choose("cpu", cpu, "Windows \(guest?.windowsVersion ?? "5.x") on a host-passthrough or recent CPU model risks STOP 0x0A; a generic \(is64 == true ? "64" : "32")-bit model" + (is64 == nil ? " (architecture unknown: 32-bit assumed)" : ""), guess: is64 == nil)
        } else if family == .unknown {
            cpu = "qemu64"
            choose("cpu", cpu, "guest unknown: the generic model", guess: true)
        } else {
            cpu = "host"
            choose("cpu", cpu, "a current guest: the host CPU's features (use a named model instead when migrating live between different hosts)")
        }
        var vcpus = machine?.vcpus ?? 1
        var cores = machine?.coresPerSocket ?? 1
        if guest?.halMultiprocessor == false, vcpus > 1 {
            choose("vcpus", "1", "verdict vcpus: uniprocessor HAL (\(guest?.hal ?? "?")) uses one CPU; the .vmx had \(vcpus)")
            vcpus = 1
            cores = 1
        } else if let machine {
            choose("vcpus", "\(vcpus)", "numvcpus = \(machine.vcpus), cpuid.coresPerSocket = \(machine.coresPerSocket)")
        } else {
            choose("vcpus", "1", "no .vmx", guess: true)
        }
        let memory = machine?.memoryMB ?? 1024
        choose("memory", "\(memory) MiB", machine != nil ? "memsize in the .vmx" : "no .vmx", guess: machine == nil)
        choose("acpi", "on", guest?.halACPI == false ? "non-ACPI HAL: ACPI on is harmless; power-off needs a guest shutdown" : "ACPI HALs and Linux need it (turning it off makes an ACPI HAL stop with 0xA5)")

        // Clock.
        let clock: TargetPlan.Clock
        if let local = guest?.rtcLocalTime {
            clock = local ? .localtime : .utc
            choose("rtc", clock.rawValue, local ? "verdict rtc: no RealTimeIsUniversal=1, Windows keeps the RTC in local time" : "RealTimeIsUniversal=1: the RTC is UTC")
        } else if family.windows {
            clock = .localtime
            choose("rtc", "localtime", "Windows keeps the RTC in local time unless RealTimeIsUniversal=1 (not checked)", guess: true)
        } else {
            clock = .utc
            choose("rtc", "utc", family == .linux ? "Linux keeps the RTC in UTC" : "guest unknown", guess: family != .linux)
        }
        if let uuid = machine?.biosUUID { choose("smbios-uuid", uuid, "uuid.bios of the .vmx (licences and Windows activation tied to it keep working)") }

        let disks = Self.disks(machine: machine, given: given, bus: bus, vmxDirectory: vmxDirectory, warnings: &warnings)
        if firmware == .uefi, family.legacy { warnings.append("Windows 2000/XP/2003 cannot boot with UEFI: check the .vmx's firmware") }
        if machine == nil { warnings.append("no .vmx: name, memory, vCPUs and MACs are guesses") }
        if guest == nil { warnings.append("no guest facts (no disk given or inspect could not read it): the buses and models are guesses") }
        let name = Self.hostName(machine?.name ?? given.first.map { ($0.path.split(separator: "/").last.map(String.init) ?? "vm") } ?? "vm")
        return TargetPlan(
            name: name, machine: machineType, firmware: firmware, secureBoot: secureBoot, cpuModel: cpu, vcpus: vcpus,
            sockets: max(1, vcpus / max(1, cores)), coresPerSocket: cores, memoryMB: memory, acpi: true, clock: clock,
            smbiosUUID: machine?.biosUUID, disks: disks, nics: nics, cdroms: machine?.cdroms.count ?? 0,
            family: "\(family)", windowsVersion: guest?.windowsVersion ?? machine?.guestOS.flatMap { Self.windowsVersion(guestOS: $0) },
            legacyWindows: family.legacy, windows: family.windows, choices: choices, warnings: warnings)
    }
}
