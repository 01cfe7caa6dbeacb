extension InspectionReport {
    /// The report as text for people: the disk, its partitions, Windows facts, then verdicts.
    public var summary: String {
        var lines: [String] = []
        if let source { lines.append("Source: \(source)") }
        var disk = "Disk: \(Self.humanSize(diskSize)), \(sectorSize)-byte sectors, "
        switch partitionTable {
        case "mbr": disk += "MBR (signature \(diskSignature ?? "?"))"
        case "gpt": disk += "GPT (\(diskGUID ?? "?"))"
        default: disk += "no partition table"
        }
        lines.append(disk)
        if let volume { lines.append("Volume: \(volume.type)\(volume.label.map { " \"\($0)\"" } ?? "")" + (volumeHiddenSectors.map { ", hidden sectors \($0)" } ?? "")) }
        if let bootLoader { lines.append("Boot loader: \(bootLoader)") }
        for p in partitions {
            var line = "  \(p.index): start \(p.startLBA) (\(p.alignment)), \(Self.humanSize(p.size)), \(p.typeName) [\(p.type)], \(p.filesystem)"
            if let label = p.label { line += " \"\(label)\"" }
            if p.bootable { line += ", boot" }
            lines.append(line)
        }
        if let w = windows {
            lines.append("Windows: \(w.productName ?? "unknown product") \(w.version ?? "")" + (w.build.map { " build \($0)" } ?? "")
                + (w.servicePack.map { ", \($0)" } ?? "") + (w.architecture.map { ", \($0)" } ?? ""))
            lines.append("  system root \(w.systemRoot) on partition \(w.partition), \(w.controlSet ?? "no control set")"
                + (w.computerName.map { ", computer \($0)" } ?? ""))
            lines.append("  HAL: \(w.hal ?? "unknown")" + (w.halFile.map { " (\($0))" } ?? ""))
            let drivers = w.drivers.filter { $0.installed || $0.fileExists }.map {
                "\($0.name)=\($0.startName ?? "-")\($0.fileExists ? "" : " (no file)")"
            }
            lines.append("  drivers: " + (drivers.isEmpty ? "none of interest" : drivers.joined(separator: ", ")))
            let cdb = w.criticalDevices.map { "\($0.id) \($0.present ? ($0.serviceReady ? "ready" : "entry only") : "missing")" }
            lines.append("  critical devices: " + cdb.joined(separator: ", "))
            lines.append("  RTC: \(w.rtcLocalTime ? "local time" : "UTC")\(w.vmwareTools ? ", VMware Tools installed" : ""), journal \(w.journal)")
        }
        for warning in warnings { lines.append("warning: \(warning)") }
        lines.append("Verdicts:")
        for v in verdicts {
            let mark = v.ok ? "ok  " : (v.severity == .blocker ? "FAIL" : "WARN")
            lines.append("  [\(mark)] \(v.id): \(v.reason)")
            if !v.fix.isEmpty, !v.ok { lines.append("         fix: \(v.fix)") }
        }
        return lines.joined(separator: "\n")
    }

    static func humanSize(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let rounded = (value * 10).rounded() / 10
        return unit == 0 ? "\(bytes) B" : "\(rounded) \(units[unit])"
    }
}
