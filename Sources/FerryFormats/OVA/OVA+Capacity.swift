import FerryBinary
import FerryDisk

extension OVA {
    /// What the OVF descriptor says a disk member's capacity is (DSP0243 §9.1,
    /// DiskSection): the `<File ovf:href=NAME ovf:id=ID>` of the member, the
    /// `<Disk ovf:fileRef=ID ovf:capacity=N ovf:capacityAllocationUnits="byte * 2^K">`
    /// that uses it. `unit` is the allocation unit in bytes (1 when the units are omitted).
    struct Capacity: Equatable {
        var bytes: UInt64
        var unit: UInt64
    }

    /// The declared capacity of `member`, or nil when the descriptor does not state
    /// one ferry can read (no DiskSection entry, a `${property}`, an unknown unit).
    static func declaredCapacity(of member: String, ovf text: String) -> Capacity? {
        let files = elements("File", in: text)
        guard let file = files.first(where: { element in
            guard let href = attribute("href", in: element) else { return false }
            return href == member || member.hasSuffix("/" + href)
        }), let id = attribute("id", in: file) else { return nil }
        guard let disk = elements("Disk", in: text).first(where: { attribute("fileRef", in: $0) == id }),
              let count = attribute("capacity", in: disk).flatMap({ UInt64($0) }),
              let unit = allocationUnit(attribute("capacityAllocationUnits", in: disk))
        else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: unit)
        return overflow ? nil : Capacity(bytes: bytes, unit: unit)
    }

    /// Checks a disk member against its OVF capacity, and decides:
    ///
    /// - smaller than the capacity by a whole allocation unit or more → refused. The VM
    ///   the OVF describes has a larger disk; a partition table written for that size
    ///   ends past this disk's end, so the copy would be a truncated disk (the archive
    ///   is damaged, or its disk was swapped).
    /// - smaller by less than one unit → a warning: the exporter rounded the capacity up
    ///   to its unit (a capacity in GiB for a disk that is not a whole number of GiB).
    /// - larger → a warning: the copy holds every byte of the disk; the OVF's hardware
    ///   description is what is stale, and nothing is lost by copying all of it.
    static func checkCapacity(_ disk: any BlockDevice, member: String, ovf text: String, file: HostFile) throws -> String? {
        guard let declared = declaredCapacity(of: member, ovf: text), declared.bytes != disk.size else { return nil }
        if disk.size < declared.bytes {
            if declared.bytes - disk.size >= declared.unit {
                throw file.error(.inconsistent, "OVF descriptor", field: "capacity",
                                 "the OVF gives disk \(member) a capacity of \(declared.bytes) bytes but the disk holds \(disk.size); a copy would be a truncated disk")
            }
            return "\(file.path): the OVF gives disk \(member) \(declared.bytes) bytes (rounded up to units of \(declared.unit)); the disk holds \(disk.size), which is what is copied"
        }
        return "\(file.path): disk \(member) holds \(disk.size) bytes, more than the \(declared.bytes) its OVF declares; all \(disk.size) are copied"
    }

    /// DSP0004 programmatic units as OVF writers use them: "byte", "byte * 2^30",
    /// and the older "KiloBytes"/"MegaBytes"/"GigaBytes". nil for anything else.
    static func allocationUnit(_ text: String?) -> UInt64? {
        guard let text else { return 1 }
        let compact = String(text.filter { $0 != " " }).lowercased()
        switch compact {
        case "byte", "bytes": return 1
        case "kilobytes": return 1 << 10
        case "megabytes": return 1 << 20
        case "gigabytes": return 1 << 30
        default: break
        }
        guard compact.hasPrefix("byte*2^"), let power = UInt64(compact.dropFirst("byte*2^".count)), power < 63 else { return nil }
        return UInt64(1) << power
    }

    /// The opening tags `<NAME …>` (with any namespace prefix), as text between `<` and `>`.
    static func elements(_ name: String, in text: String) -> [Substring] {
        var result: [Substring] = []
        var rest = text[...]
        while let open = rest.firstIndex(of: "<") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: ">") else { break }
            let tag = after[..<close]
            let tagName = tag.prefix { !$0.isWhitespace && $0 != "/" }
            if tagName == name || tagName.hasSuffix(":" + name) { result.append(tag) }
            rest = after[after.index(after: close)...]
        }
        return result
    }

    /// The value of attribute `local` (any namespace prefix) in an opening tag.
    static func attribute(_ local: String, in tag: Substring) -> String? {
        var rest = tag
        let key = local + "=\""
        while let range = rest.firstRange(of: key) {
            let before = range.lowerBound == rest.startIndex ? " " : rest[rest.index(before: range.lowerBound)]
            let value = rest[range.upperBound...]
            if before == ":" || before.isWhitespace, let end = value.firstIndex(of: "\"") { return String(value[..<end]) }
            rest = value
        }
        return nil
    }
}
