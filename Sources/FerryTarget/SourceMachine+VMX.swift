extension SourceMachine {
    /// Reads the machine out of a parsed .vmx. Never fails: a .vmx with no usable keys is a
    /// machine of defaults (VMware's: 1 vCPU, 32 MB, BIOS) with warnings saying so.
    public init(vmx document: VMX.Document) {
        var reader = KeyReader(document: document)
        var warnings = document.warnings
        name = reader.string("displayName")
        guestOS = reader.string("guestOS")
        virtualHardwareVersion = reader.int("virtualHW.version", in: 3...30, warnings: &warnings)
        _ = reader.string("config.version")
        _ = reader.string(".encoding")
        switch reader.string("firmware")?.lowercased() {
        case "efi"?: firmware = .efi
        case nil, "bios"?: firmware = .bios
        case let other?:
            warnings.append("firmware = \"\(other)\" is not bios or efi; BIOS assumed")
            firmware = .bios
        }
        secureBoot = reader.flag("uefi.secureBoot.enabled") ?? false
        if secureBoot, firmware == .bios {
            warnings.append("uefi.secureBoot.enabled is set on a BIOS VM; ignored")
            secureBoot = false
        }
        if let v = reader.int("numvcpus", in: 1...768, warnings: &warnings) {
            vcpus = v
        } else {
            vcpus = 1
        }
        coresPerSocket = reader.int("cpuid.coresPerSocket", in: 1...768, warnings: &warnings) ?? 1
        if vcpus % coresPerSocket != 0 {
            warnings.append("numvcpus \(vcpus) is not a multiple of cpuid.coresPerSocket \(coresPerSocket); one socket per vCPU used")
            coresPerSocket = 1
        }
        if let m = reader.int("memsize", in: 4...(16 << 20), warnings: &warnings) {
            memoryMB = m
        } else {
            memoryMB = 32
            warnings.append("memsize missing or invalid: VMware's default of 32 MB used")
        }
        if let raw = reader.string("uuid.bios") {
            biosUUID = Self.smbiosUUID(raw)
            if biosUUID == nil { warnings.append("uuid.bios \"\(raw)\" is not 16 hex bytes; the target gets a new SMBIOS UUID") }
        } else {
            biosUUID = nil
        }
        var time: [String: String] = [:]
        for key in ["rtc.diffFromUTC", "rtc.startTime", "tools.syncTime", "time.synchronize.continue", "time.synchronize.restore",
            "time.synchronize.resume.disk", "time.synchronize.shrink", "time.synchronize.tools.startup"]
        {
            if let value = reader.string(key) { time[key] = value }
        }
        self.time = time
        (disks, cdroms) = Self.storage(&reader, warnings: &warnings)
        nics = Self.nics(&reader, warnings: &warnings)
        otherKeys = document.entries.filter { !reader.used.contains($0.key.lowercased()) }
        self.warnings = warnings
    }

    /// Parses a .vmx's bytes into a machine.
    public init(vmxBytes bytes: [UInt8]) throws {
        self.init(vmx: try VMX.parse(bytes))
    }

    /// `"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc"` → `564d1234-5678-9abc-def0-123456789abc`.
    static func smbiosUUID(_ raw: String) -> String? {
        let digits = raw.lowercased().filter { $0 != " " && $0 != "-" }
        guard digits.count == 32, digits.allSatisfy(\.isHexDigit) else { return nil }
        let d = Array(digits)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(d[$0]) }.joined(separator: "-")
    }
}

/// Reads keys, remembering which were read so the rest can be listed.
struct KeyReader {
    let document: VMX.Document
    var used: Set<String> = []
    /// Lowercased keys by namespace (the part before the first dot: `scsi0:1`, `ethernet0`),
    /// so marking a device's keys costs its own keys, not the whole file (a hostile file has
    /// thousands of device slots).
    let namespaces: [Substring: [String]]

    init(document: VMX.Document) {
        self.document = document
        var namespaces: [Substring: [String]] = [:]
        for entry in document.entries {
            let key = entry.key.lowercased()
            namespaces[key.split(separator: ".", maxSplits: 1).first ?? "", default: []].append(key)
        }
        self.namespaces = namespaces
    }

    /// Marks every key of the namespace `name` (`scsi0:1`) as read.
    mutating func markNamespace(_ name: String) {
        for key in namespaces[Substring(name.lowercased())] ?? [] { used.insert(key) }
    }

    mutating func string(_ key: String) -> String? {
        used.insert(key.lowercased())
        return document[key]
    }

    mutating func flag(_ key: String) -> Bool? {
        used.insert(key.lowercased())
        return document.flag(key)
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>, warnings: inout [String]) -> Int? {
        guard let raw = string(key) else { return nil }
        guard let value = Int(raw.trimmingSpaces), range.contains(value) else {
            warnings.append("\(key) = \"\(raw)\" is not a number in \(range.lowerBound)…\(range.upperBound); ignored")
            return nil
        }
        return value
    }
}

extension String {
    var trimmingSpaces: Substring {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
