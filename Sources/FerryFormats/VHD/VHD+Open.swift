import FerryBinary
import FerryDisk

#if canImport(Glibc)
import Glibc
#endif

extension VHD {
    /// Opens a VHD read-only; differencing disks open their parent too.
    static func open(_ file: HostFile, chain: inout ChainGuard) throws -> MappedDisk {
        do {
            return try openImage(file, chain: &chain).disk
        } catch let error as FormatError {
            throw error.inFile(file.path)
        }
    }

    private static func openImage(_ file: HostFile, chain: inout ChainGuard) throws -> (disk: MappedDisk, id: [UInt8]) {
        let footer = try readFooter(file)
        let size = footer.virtualSize
        if footer.diskType == .fixed {
            guard size <= file.size - 512 else {
                throw file.error(.truncated, Footer.structure, field: "current size", at: file.size - 512 + 48,
                                 "the fixed disk claims \(size) bytes but the file holds \(file.size - 512) before its footer")
            }
            let mapper = Mapper(file: file, virtualSize: size, type: .fixed, bat: [], blockSize: 512)
            return (MappedDisk(name: file.path, mapper: mapper, backing: nil, files: [file]), footer.uniqueID)
        }
        let header = try DynamicHeader(
            parsing: try file.bytes(at: HostOffset(footer.dataOffset), count: 1024, DynamicHeader.structure),
            baseOffset: footer.dataOffset)
        let blockSize = UInt64(header.blockSize)
        let needed = size / blockSize + (size % blockSize == 0 ? 0 : 1)
        guard UInt64(header.maxTableEntries) >= needed else {
            throw file.error(.inconsistent, DynamicHeader.structure, field: "max table entries", at: footer.dataOffset + 28,
                             "\(header.maxTableEntries) blocks of \(blockSize) bytes cannot hold \(size) bytes")
        }
        let batBytes = needed * 4
        guard batBytes <= UInt64(FormatLimits.maxTableBytes) else {
            throw file.error(.limitExceeded, DynamicHeader.structure, field: "max table entries", at: footer.dataOffset + 28,
                             "a block allocation table of \(batBytes) bytes exceeds the limit")
        }
        let raw = try file.bytes(at: HostOffset(header.tableOffset), count: Int(batBytes), "VHD block allocation table")
        var bat = [UInt32](repeating: 0, count: Int(needed))
        for i in 0..<bat.count { bat[i] = raw.bigEndian(UInt32.self, at: i * 4) ?? VHD.unallocated }
        let mapper = Mapper(file: file, virtualSize: size, type: footer.diskType, bat: bat,
                            batOffset: header.tableOffset, blockSize: blockSize)
        var parent: (any BlockDevice)?
        if footer.diskType == .differencing {
            let path = try parentPath(header, file: file)
            try chain.enter(path, structure: "VHD parent chain")
            let parentFile = try chain.openNamed(path, at: path, by: file, as: "parent (parent locator)")
            chain.record(parentFile, .vhd, .named, role: .parent)
            let (disk, id) = try openImage(parentFile, chain: &chain)
            guard id == header.parentUniqueID else {
                throw file.error(.inconsistent, DynamicHeader.structure, field: "parent unique id", at: footer.dataOffset + 40,
                                 "the parent \(path) has unique id \(id.hexString), the child expects \(header.parentUniqueID.hexString)")
            }
            parent = disk
        }
        return (MappedDisk(name: file.path, mapper: mapper, backing: parent, files: [file]), footer.uniqueID)
    }

    /// The footer at the end of the file (or at EOF-511 for pre-2004 Virtual PC);
    /// a dynamic disk whose trailing footer is damaged falls back to the copy at 0.
    private static func readFooter(_ file: HostFile) throws -> Footer {
        guard file.size >= 512 else {
            throw file.error(.truncated, Footer.structure, at: 0, "the file is shorter than a VHD footer")
        }
        var firstError: (any Error)?
        for at in [file.size - 512, file.size - 511, 0] {
            do {
                var bytes = try file.bytes(at: HostOffset(at), count: Int(min(512, file.size - at)), Footer.structure)
                bytes += [UInt8](repeating: 0, count: 512 - bytes.count)
                let footer = try Footer(parsing: bytes, baseOffset: at)
                if at == 0 && footer.diskType == .fixed { break }
                return footer
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        throw firstError ?? file.error(.badMagic, Footer.structure, at: file.size - 512, "no VHD footer")
    }

    /// Finds the parent: relative locator (W2ru), then the absolute one (W2ku) and
    /// the header's parent name, each looked up by base name beside the child.
    private static func parentPath(_ header: DynamicHeader, file: HostFile) throws -> String {
        var candidates: [String] = []
        for code in ["W2ru", "W2ku"] {
            guard let locator = header.locators.first(where: { $0.code == Array(code.utf8) }),
                  locator.length > 0, locator.length <= 4096 else { continue }
            let bytes = try file.bytes(at: HostOffset(locator.offset), count: Int(locator.length), "VHD parent locator")
            var units: [UInt16] = []
            for i in stride(from: 0, to: bytes.count - 1, by: 2) { units.append(UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8) }
            let name = String(decoding: units.prefix(while: { $0 != 0 }), as: UTF16.self).replacingOccurrences(of: "\\", with: "/")
            candidates.append(code == "W2ru" ? (name.hasPrefix("./") ? String(name.dropFirst(2)) : name) : baseName(name))
        }
        if !header.parentName.isEmpty { candidates.append(baseName(header.parentName.replacingOccurrences(of: "\\", with: "/"))) }
        for name in candidates where !name.isEmpty {
            let path = file.resolve(name)
            if access(path, F_OK) == 0 { return path }
        }
        throw file.error(.inconsistent, DynamicHeader.structure, field: "parent locators",
                         "the parent disk (\(header.parentName)) was not found beside the differencing disk (tried \(candidates.joined(separator: ", ")))")
    }

    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
