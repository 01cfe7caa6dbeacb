import FerryBinary
import FerryDisk

#if canImport(Glibc)
import Glibc
#endif

extension VHDX {
    /// Opens a dynamic, fixed or differencing VHDX read-only. Images whose log must
    /// be replayed are refused with a message saying what to do.
    static func open(_ file: HostFile, chain: inout ChainGuard) throws -> MappedDisk {
        try openImage(file, chain: &chain).disk
    }

    /// The disk and its current header (a child checks its parent's data write GUID).
    private static func openImage(_ file: HostFile, chain: inout ChainGuard) throws -> (disk: MappedDisk, header: Header) {
        do {
            return try openChecked(file, chain: &chain)
        } catch let error as FormatError {
            throw error.inFile(file.path)
        }
    }

    private static func openChecked(_ file: HostFile, chain: inout ChainGuard) throws -> (disk: MappedDisk, header: Header) {
        let ident = try file.bytes(at: HostOffset(0), count: 8, "VHDX file identifier")
        guard ident == Array("vhdxfile".utf8) else {
            throw file.error(.badMagic, "VHDX file identifier", at: 0, "expected vhdxfile")
        }
        let header = try currentHeader(file)
        // A non-zero log GUID means the log may hold updates not yet in place:
        // replay them into an in-memory overlay (the source is never written).
        let file = header.logGUID.allSatisfy({ $0 == 0 }) ? file : try Log.replay(file, header: header)
        let regions = try regionTable(file)
        guard let batRegion = regions.entries.first(where: { $0.guid == Region.bat }),
              let metaRegion = regions.entries.first(where: { $0.guid == Region.metadata }) else {
            throw file.error(.inconsistent, regionStructure, at: 192 * 1024, "the BAT or metadata region is missing")
        }
        if let unknown = regions.entries.first(where: { $0.required && $0.guid != Region.bat && $0.guid != Region.metadata }) {
            throw file.error(.unsupportedFeature, regionStructure, at: 192 * 1024,
                             "unknown required region \(unknown.guid.hexString)")
        }
        guard metaRegion.length <= UInt32(FormatLimits.maxTableBytes), batRegion.length <= UInt32(FormatLimits.maxTableBytes) else {
            throw file.error(.limitExceeded, regionStructure, at: 192 * 1024, "BAT or metadata region exceeds the table size limit")
        }
        let metadata = try Metadata(
            parsing: try file.bytes(at: HostOffset(metaRegion.offset), count: Int(metaRegion.length), Metadata.structure),
            baseOffset: metaRegion.offset)
        let blockSize = UInt64(metadata.blockSize)
        let chunkRatio = (UInt64(1) << 23) * UInt64(metadata.logicalSectorSize) / blockSize
        let blocks = metadata.virtualSize / blockSize + (metadata.virtualSize % blockSize == 0 ? 0 : 1)
        // [MS-VHDX] 2.5: a differencing disk's BAT ends with the last chunk's bitmap entry.
        let chunks = blocks / chunkRatio + (blocks % chunkRatio == 0 ? 0 : 1)
        let entries = metadata.hasParent ? chunks * (chunkRatio + 1) : (blocks == 0 ? 0 : blocks + (blocks - 1) / chunkRatio)
        guard entries * 8 <= UInt64(batRegion.length) else {
            throw file.error(.inconsistent, regionStructure, field: "BAT length", at: batRegion.offset,
                             "a BAT of \(batRegion.length) bytes cannot map \(blocks) blocks")
        }
        let raw = try file.bytes(at: HostOffset(batRegion.offset), count: Int(entries * 8), "VHDX BAT")
        var bat = [UInt64](repeating: 0, count: Int(entries))
        for i in 0..<bat.count { bat[i] = raw.littleEndian(UInt64.self, at: i * 8) ?? 0 }
        let sector = UInt64(metadata.logicalSectorSize)
        let mapper = Mapper(file: file, virtualSize: metadata.virtualSize, blockSize: blockSize, chunkRatio: chunkRatio,
                            bat: bat, batOffset: batRegion.offset, logicalSectorSize: sector)
        let parent = metadata.hasParent ? try openParent(metadata, file: file, chain: &chain) : nil
        let disk = MappedDisk(name: file.path, mapper: mapper, backing: parent, files: [file],
                              logicalSectorSize: Int(metadata.logicalSectorSize))
        return (disk, header)
    }

    /// Finds the parent through the locator ([MS-VHDX] 2.6.2.6.1: relative_path, then
    /// the base names of volume_path and absolute_win32_path beside the child) and
    /// checks that its data write GUID is the child's parent_linkage.
    private static func openParent(_ metadata: Metadata, file: HostFile, chain: inout ChainGuard) throws -> any BlockDevice {
        let keys = metadata.parentLocator
        guard let linkage = keys["parent_linkage"] else {
            throw file.error(.inconsistent, "VHDX parent locator", field: "parent_linkage",
                             "the differencing disk does not name its parent's data write GUID")
        }
        var candidates: [String] = []
        if let relative = keys["relative_path"] {
            var name = relative.replacingOccurrences(of: "\\", with: "/")
            if name.hasPrefix("./") { name.removeFirst(2) }
            candidates.append(name)
        }
        for key in ["volume_path", "absolute_win32_path"] {
            if let path = keys[key] { candidates.append(VHD.baseName(path.replacingOccurrences(of: "\\", with: "/"))) }
        }
        guard let path = candidates.map({ file.resolve($0) }).first(where: { access($0, F_OK) == 0 }) else {
            throw file.error(.inconsistent, "VHDX parent locator", field: "relative_path",
                             "the parent disk was not found beside the differencing disk (tried \(candidates.joined(separator: ", ")))")
        }
        try chain.enter(path, structure: "VHDX parent chain")
        let parentFile = try chain.openNamed(path, at: path, by: file, as: "parent (parent locator)")
        chain.record(parentFile, .vhdx, .named, role: .parent)
        let (parent, header) = try openImage(parentFile, chain: &chain)
        let expected = VHDX.guid(String(linkage.filter { $0 != "{" && $0 != "}" }))
        guard header.dataWriteGUID == expected else {
            throw file.error(.inconsistent, "VHDX parent locator", field: "parent_linkage",
                             "the parent \(path) has data write GUID \(header.dataWriteGUID.hexString), the child expects \(linkage)")
        }
        return parent
    }

    /// The valid header with the higher sequence number ([MS-VHDX] 2.2.2.1).
    private static func currentHeader(_ file: HostFile) throws -> Header {
        var valid: [Header] = []
        var firstError: (any Error)?
        for at: UInt64 in [64 * 1024, 128 * 1024] {
            do {
                valid.append(try Header(parsing: try file.bytes(at: HostOffset(at), count: 4096, headerStructure), baseOffset: at))
            } catch {
                firstError = firstError ?? error
            }
        }
        guard let best = valid.max(by: { $0.sequence < $1.sequence }) else {
            throw firstError ?? file.error(.badChecksum, headerStructure, at: 64 * 1024, "neither header is valid")
        }
        return best
    }

    /// Region table 1, or its copy if table 1 is damaged.
    private static func regionTable(_ file: HostFile) throws -> RegionTable {
        do {
            return try RegionTable(parsing: try file.bytes(at: HostOffset(192 * 1024), count: 65536, regionStructure), baseOffset: 192 * 1024)
        } catch {
            return try RegionTable(parsing: try file.bytes(at: HostOffset(256 * 1024), count: 65536, regionStructure), baseOffset: 256 * 1024)
        }
    }
}
