import FerryDisk

/// Recognises image formats by content (magic numbers), never by file name.
enum FormatProbe {
    static func detect(_ device: any BlockDevice) throws -> ImageFormat {
        let head = try device.readBytes(at: 0, count: Int(min(device.size, 4096)))
        func starts(_ text: String) -> Bool { head.starts(with: Array(text.utf8)) }
        if head.starts(with: [0x51, 0x46, 0x49, 0xfb]) { return .qcow2 }
        if starts("KDMV") || starts("COWD") { return .vmdk }
        if starts("vhdxfile") { return .vhdx }
        if starts("conectix") { return .vhd }
        if looksLikeVMDKDescriptor(head, size: device.size) { return .vmdk }
        if isTarWithOVF(head) { return .ova }
        // A fixed VHD is raw data followed by a 512-byte footer (pre-2004 Virtual PC
        // wrote 511 bytes): look at the end of the file.
        if device.size >= 1024 {
            for back in [UInt64(512), 511] {
                let tail = try device.readBytes(at: device.size - back, count: 8)
                if tail == Array("conectix".utf8) { return .vhd }
            }
        }
        return .raw
    }

    /// A VMDK text descriptor: small, and its first meaningful line is the
    /// "# Disk DescriptorFile" banner or `version=N` (how qemu probes too).
    static func looksLikeVMDKDescriptor(_ head: [UInt8], size: UInt64) -> Bool {
        guard size <= UInt64(FormatLimits.maxDescriptorBytes) else { return false }
        let text = String(decoding: head.prefix(1024), as: UTF8.self)
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = raw.trimmingCharacters(in: " \t")
            if line.isEmpty { continue }
            if line.lowercased().hasPrefix("# disk descriptorfile") { return true }
            if line.hasPrefix("#") { continue }
            return line.replacingOccurrences(of: " ", with: "").hasPrefix("version=")
        }
        return false
    }

    /// An OVA is a POSIX tar archive whose first member is the .ovf descriptor.
    static func isTarWithOVF(_ head: [UInt8]) -> Bool {
        guard head.count >= 512, Array(head[257..<262]) == Array("ustar".utf8) else { return false }
        let name = String(decoding: head[0..<100].prefix(while: { $0 != 0 }), as: UTF8.self)
        return name.lowercased().hasSuffix(".ovf")
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Substring(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
