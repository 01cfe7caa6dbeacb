import FerryBinary
import FerryDisk

/// OVA: a POSIX tar archive holding an OVF descriptor and the disk files it names
/// (DMTF DSP0243 §5.3; tar per POSIX.1-2001 "ustar Interchange Format").
///
/// ```
///  [hdr 512][x.ovf … pad 512][hdr][x-disk1.vmdk (streamOptimized) … pad][hdr][…][zero 512][zero 512]
///  ustar header: name @0 (100), size @124 (12, octal or base-256), typeflag @156,
///                magic "ustar" @257, prefix @345 (155)
/// ```
/// Disks are read in place: each member is a contiguous byte range of the archive.
public enum OVA {
    /// One archive member.
    struct Member: Sendable, Equatable {
        var name: String
        var offset: UInt64
        var size: UInt64
    }

    static let structure = "OVA tar header"
    /// Most members walked; an OVA holds a handful.
    static let maxMembers = 100_000

    /// The regular-file members, in archive order. GNU long names ('L') and pax
    /// 'path'/'size' records ('x') are honoured; each step advances at least 512 bytes.
    static func members(_ file: HostFile) throws -> [Member] {
        var result: [Member] = []
        var at: UInt64 = 0
        var longName: String?
        var paxSize: UInt64?
        while at + 512 <= file.size {
            guard result.count < maxMembers else {
                throw file.error(.limitExceeded, structure, at: at, "more than \(maxMembers) members")
            }
            let header = try file.bytes(at: HostOffset(at), count: 512, structure)
            if header.allSatisfy({ $0 == 0 }) { break }
            guard Array(header[257..<262]) == Array("ustar".utf8) else {
                throw file.error(.badMagic, structure, field: "magic", at: at + 257, "not a ustar header")
            }
            let size = try paxSize ?? octal(header[124..<136], file: file, at: at + 124)
            let dataStart = at + 512
            let padded = try Checked.add(size, (512 - size % 512) % 512, "size", structure: structure)
            let next = try Checked.add(dataStart, padded, "size", structure: structure)
            guard dataStart + size <= file.size else {
                throw file.error(.truncated, structure, field: "size", at: at + 124,
                                 "a member of \(size) bytes runs past the end of the \(file.size)-byte archive")
            }
            let type = header[156]
            func text(_ range: Range<Int>) -> String { String(decoding: header[range].prefix(while: { $0 != 0 }), as: UTF8.self) }
            switch type {
            case UInt8(ascii: "L"):
                let bytes = try file.bytes(at: HostOffset(dataStart), count: Int(min(size, 4096)), structure)
                longName = String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            case UInt8(ascii: "x"):
                let bytes = try file.bytes(at: HostOffset(dataStart), count: Int(min(size, 65536)), structure)
                for record in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                    guard let space = record.firstIndex(of: " "), let eq = record.firstIndex(of: "=") else { continue }
                    let key = record[record.index(after: space)..<eq]
                    let value = String(record[record.index(after: eq)...])
                    if key == "path" { longName = value }
                    if key == "size" { paxSize = UInt64(value) }
                }
            case 0, UInt8(ascii: "0"):
                let prefix = text(345..<500)
                let name = longName ?? (prefix.isEmpty ? text(0..<100) : prefix + "/" + text(0..<100))
                result.append(Member(name: name, offset: dataStart, size: size))
                longName = nil
                paxSize = nil
            default:
                longName = nil
                paxSize = nil
            }
            at = next
        }
        return result
    }

    /// A tar number: NUL/space-terminated octal, or base-256 when the top bit is set.
    static func octal(_ field: ArraySlice<UInt8>, file: HostFile, at offset: UInt64) throws -> UInt64 {
        if let first = field.first, first & 0x80 != 0 {
            var value: UInt64 = 0
            for (i, byte) in field.enumerated() {
                let b = i == 0 ? byte & 0x7f : byte
                guard value >> 56 == 0 else { throw file.error(.outOfRange, structure, field: "size", at: offset, "size overflows") }
                value = value << 8 | UInt64(b)
            }
            return value
        }
        var value: UInt64 = 0
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if value == 0 { continue } else { break }
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value >> 60 == 0 else {
                throw file.error(.inconsistent, structure, field: "size", at: offset, "size is not an octal number")
            }
            value = value * 8 + UInt64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// Disk members: the files the OVF names in its References section, in its
    /// order, or else every member that is not the .ovf/.mf/.cert.
    static func disks(_ file: HostFile, _ members: [Member]) throws -> [Member] {
        let candidates = members.filter {
            let lower = $0.name.lowercased()
            return !(lower.hasSuffix(".ovf") || lower.hasSuffix(".mf") || lower.hasSuffix(".cert"))
        }
        guard let text = try ovfText(file, members) else { return candidates }
        var ordered: [Member] = []
        for piece in text.split(separator: "href=\"").dropFirst() {
            guard let end = piece.firstIndex(of: "\"") else { continue }
            let name = String(piece[..<end])
            if let m = candidates.first(where: { $0.name == name || $0.name.hasSuffix("/" + name) }), !ordered.contains(m) {
                ordered.append(m)
            }
        }
        return ordered.isEmpty ? candidates : ordered
    }

    /// The OVF descriptor's text, when the archive holds one of a sane size.
    static func ovfText(_ file: HostFile, _ members: [Member]) throws -> String? {
        guard let ovf = members.first(where: { $0.name.lowercased().hasSuffix(".ovf") }),
              ovf.size <= UInt64(FormatLimits.maxDescriptorBytes) else { return nil }
        return String(decoding: try file.bytes(at: HostOffset(ovf.offset), count: Int(ovf.size), "OVF descriptor"), as: UTF8.self)
    }

    /// Opens disk `member` (or the only disk) of the archive as a virtual disk.
    static func open(_ file: HostFile, member: String?, chain: inout ChainGuard) throws -> any BlockDevice {
        let all = try members(file)
        let disks = try disks(file, all)
        let chosen: Member
        if let member {
            guard let m = disks.first(where: { $0.name == member }) else {
                throw file.error(.inconsistent, "OVA", "no disk named \(member); the archive holds \(disks.map(\.name))")
            }
            chosen = m
        } else {
            guard disks.count == 1, let only = disks.first else {
                throw file.error(.unsupportedFeature, "OVA",
                                 "the archive holds \(disks.count) disks (\(disks.map(\.name).joined(separator: ", "))); choose one with DiskImage.openOVADisk")
            }
            chosen = only
        }
        let slice = SliceDevice(file.device, offset: chosen.offset, size: chosen.size, name: file.path + ":" + chosen.name)
        let inner = HostFile(path: slice.name, device: slice)
        let disk: any BlockDevice
        switch try FormatProbe.detect(slice) {
        case .vmdk: disk = try VMDK.open(inner, chain: &chain)
        case .qcow2: disk = try QCOW2.open(inner, chain: &chain)
        case .vhd: disk = try VHD.open(inner, chain: &chain)
        case .vhdx: disk = try VHDX.open(inner, chain: &chain)
        case .raw, .ova: disk = slice
        }
        if let text = try ovfText(file, all), let warning = try checkCapacity(disk, member: chosen.name, ovf: text, file: file) {
            chain.warn(warning)
        }
        return disk
    }
}
