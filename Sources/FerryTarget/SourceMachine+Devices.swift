extension SourceMachine {
    /// Disk and CD-ROM slots: `scsiN:M`, `ideN:M`, `sataN:M`, `nvmeN:M`, in the file's order of
    /// buses then controller/unit. A slot exists when `<slot>.present` is true and its
    /// controller (`scsiN.present`) is not switched off.
    static func storage(_ reader: inout KeyReader, warnings: inout [String]) -> ([SourceDisk], [SourceCDROM]) {
        var slots: [(SourceDisk.Bus, Int, Int)] = []
        for entry in reader.document.entries {
            let key = entry.key.lowercased()
            guard key.hasSuffix(".present"), let slot = parseSlot(String(key.dropLast(".present".count))) else { continue }
            slots.append(slot)
        }
        slots.sort { ($0.0.order, $0.1, $0.2) < ($1.0.order, $1.1, $1.2) }
        var disks: [SourceDisk] = []
        var cdroms: [SourceCDROM] = []
        for (bus, controller, unit) in slots {
            let slot = "\(bus.rawValue)\(controller):\(unit)"
            if disks.count + cdroms.count >= maxDisks {
                warnings.append("more than \(maxDisks) disk and CD-ROM slots: \(slot) and the rest ignored")
                break
            }
            guard reader.flag(slot + ".present") == true else {
                reader.markNamespace(slot)
                continue
            }
            if bus != .ide, reader.flag("\(bus.rawValue)\(controller).present") == false {
                warnings.append("\(slot) is present but its controller \(bus.rawValue)\(controller) is not; ignored")
                reader.markNamespace(slot)
                continue
            }
            let fileName = reader.string(slot + ".fileName")
            let deviceType = reader.string(slot + ".deviceType")?.lowercased()
            let isCD = deviceType.map { $0.contains("cdrom") } ?? false
            if isCD {
                cdroms.append(SourceCDROM(bus: bus, controller: controller, unit: unit, deviceType: deviceType ?? "cdrom-image", fileName: fileName))
                reader.markNamespace(slot)
                continue
            }
            let known = [nil, "disk", "scsi-harddisk", "plaindisk", "rawdisk", "ata-harddisk", "scsi-passthru"]
            if !known.contains(deviceType) {
                warnings.append("\(slot): deviceType \"\(deviceType ?? "")\" is not a disk or CD-ROM; ignored")
                reader.markNamespace(slot)
                continue
            }
            guard let fileName, !fileName.isEmpty else {
                warnings.append("\(slot) has no fileName; ignored")
                reader.markNamespace(slot)
                continue
            }
            if deviceType == "rawdisk" || deviceType == "scsi-passthru" {
                warnings.append("\(slot) is a raw device mapping (\(fileName)): copy the LUN itself, not the mapping file")
            }
            if let problem = pathProblem(fileName) { warnings.append("\(slot) fileName \"\(fileName)\" \(problem)") }
            let mode = reader.string(slot + ".mode")?.lowercased() ?? "persistent"
            if mode.contains("nonpersistent") || mode == "undoable" {
                warnings.append("\(slot) is \(mode): VMware discards its changes at power-off; the target keeps them")
            }
            let controllerType = bus == .scsi ? reader.string("scsi\(controller).virtualDev")?.lowercased() : nil
            disks.append(
                SourceDisk(bus: bus, controller: controller, unit: unit, controllerType: controllerType, fileName: fileName,
                    mode: mode, snapshot: isSnapshotName(fileName)))
            reader.markNamespace(slot)
        }
        // Controllers themselves: scsiN.present / .virtualDev / .pciSlotNumber …
        for entry in reader.document.entries {
            let key = entry.key.lowercased()
            for bus in SourceDisk.Bus.allCases where key.hasPrefix(bus.rawValue) {
                let rest = key.dropFirst(bus.rawValue.count)
                if let dot = rest.firstIndex(of: "."), !rest[..<dot].isEmpty, rest[..<dot].allSatisfy(\.isNumber) {
                    reader.used.insert(key)
                }
            }
        }
        if disks.contains(where: \.snapshot) {
            warnings.append("the VM runs on snapshots (\(disks.filter(\.snapshot).map(\.fileName).joined(separator: ", "))): consolidate them (delete all snapshots) before the final copy, or copy the whole chain")
        }
        return (disks, cdroms)
    }

    static func nics(_ reader: inout KeyReader, warnings: inout [String]) -> [SourceNIC] {
        var indexes: [Int] = []
        for entry in reader.document.entries {
            let key = entry.key.lowercased()
            guard key.hasPrefix("ethernet"), key.hasSuffix(".present") else { continue }
            if let n = Int(key.dropFirst("ethernet".count).dropLast(".present".count)), n >= 0, n < 100 { indexes.append(n) }
        }
        var nics: [SourceNIC] = []
        for n in indexes.sorted() {
            let p = "ethernet\(n)."
            defer { reader.markNamespace("ethernet\(n)") }
            guard reader.flag(p + "present") == true else { continue }
            let addressType = reader.string(p + "addressType")?.lowercased()
            let address = reader.string(p + "address").flatMap(normalizedMAC)
            let generated = reader.string(p + "generatedAddress").flatMap(normalizedMAC)
            // A static address is the one VMware uses when addressType says so; otherwise the
            // generated one (windows-and-targets §3.1: virt-v2v ignores `.address`, we do not).
            let (mac, source): (String?, String?) =
                addressType == "static" ? (address ?? generated, address != nil ? "address" : (generated != nil ? "generatedAddress" : nil))
                : (generated ?? address, generated != nil ? "generatedAddress" : (address != nil ? "address" : nil))
            if mac == nil { warnings.append("ethernet\(n) has no valid MAC address; the target will generate one (Windows sees a new NIC)") }
            nics.append(
                SourceNIC(index: n, virtualDev: reader.string(p + "virtualDev")?.lowercased(), mac: mac, macSource: source,
                    addressType: addressType, networkName: reader.string(p + "networkName"),
                    connectionType: reader.string(p + "connectionType")?.lowercased()))
        }
        return nics
    }

    /// More disks than any VM has (ESXi allows 4 × 15 SCSI + 4 × 30 SATA + 4 × 15 NVMe + 4 IDE):
    /// the rest of a hostile file's slots are ignored with a warning.
    static let maxDisks = 256

    /// `scsi0:1` → (.scsi, 0, 1).
    static func parseSlot(_ key: String) -> (SourceDisk.Bus, Int, Int)? {
        for bus in SourceDisk.Bus.allCases where key.hasPrefix(bus.rawValue) {
            let parts = key.dropFirst(bus.rawValue.count).split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let c = Int(parts[0]), let u = Int(parts[1]), (0..<64).contains(c), (0..<256).contains(u) else { return nil }
            return (bus, c, u)
        }
        return nil
    }

    /// `aa:bb:cc:dd:ee:ff` (or with dashes) in lowercase, or nil.
    static func normalizedMAC(_ raw: String) -> String? {
        let parts = raw.lowercased().split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else { return nil }
        return parts.joined(separator: ":")
    }

    /// Why a disk path is worth a warning: it leaves the VM's directory.
    static func pathProblem(_ path: String) -> String? {
        if path.hasPrefix("/") { return "is an absolute path (another datastore?): give that disk on the command line" }
        if path.split(separator: "/").contains("..") { return "contains '..': it leaves the VM's directory; give that disk on the command line" }
        return nil
    }

    /// `name-000001.vmdk`: VMware's snapshot delta naming.
    static func isSnapshotName(_ fileName: String) -> Bool {
        let base = fileName.split(separator: "/").last.map(String.init) ?? fileName
        guard base.lowercased().hasSuffix(".vmdk") else { return false }
        let stem = base.dropLast(5)
        guard let dash = stem.lastIndex(of: "-") else { return false }
        let digits = stem[stem.index(after: dash)...]
        return digits.count == 6 && digits.allSatisfy(\.isNumber)
    }
}

extension SourceDisk.Bus {
    var order: Int {
        switch self {
        case .ide: return 0
        case .scsi: return 1
        case .sata: return 2
        case .nvme: return 3
        }
    }
}
