import FerryBinary
import FerryDisk

extension VHDX {
    /// Opens a dynamic or fixed VHDX read-only. Images whose log must be replayed
    /// and differencing images are refused with a message saying what to do.
    static func open(_ file: HostFile) throws -> MappedDisk {
        do {
            return try openChecked(file)
        } catch let error as FormatError {
            throw error.inFile(file.path)
        }
    }

    private static func openChecked(_ file: HostFile) throws -> MappedDisk {
        let ident = try file.bytes(at: HostOffset(0), count: 8, "VHDX file identifier")
        guard ident == Array("vhdxfile".utf8) else {
            throw file.error(.badMagic, "VHDX file identifier", at: 0, "expected vhdxfile")
        }
        let header = try currentHeader(file)
        guard header.logGUID.allSatisfy({ $0 == 0 }) else {
            throw file.error(.unsupportedFeature, headerStructure, field: "log GUID", at: nil,
                             "the image has a log that must be replayed (it was not closed cleanly); run `qemu-img check -r all` on a copy, or open and close it in Hyper-V, then retry")
        }
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
        if metadata.hasParent {
            throw file.error(.unsupportedFeature, Metadata.structure, field: "file parameters",
                             "differencing VHDX images are not supported yet; merge the chain in Hyper-V (Merge-VHD) first")
        }
        let blockSize = UInt64(metadata.blockSize)
        let chunkRatio = (UInt64(1) << 23) * UInt64(metadata.logicalSectorSize) / blockSize
        let blocks = metadata.virtualSize / blockSize + (metadata.virtualSize % blockSize == 0 ? 0 : 1)
        let entries = blocks == 0 ? 0 : blocks + (blocks - 1) / chunkRatio
        guard entries * 8 <= UInt64(batRegion.length) else {
            throw file.error(.inconsistent, regionStructure, field: "BAT length", at: batRegion.offset,
                             "a BAT of \(batRegion.length) bytes cannot map \(blocks) blocks")
        }
        let raw = try file.bytes(at: HostOffset(batRegion.offset), count: Int(entries * 8), "VHDX BAT")
        var bat = [UInt64](repeating: 0, count: Int(entries))
        for i in 0..<bat.count { bat[i] = raw.littleEndian(UInt64.self, at: i * 8) ?? 0 }
        let mapper = Mapper(file: file, virtualSize: metadata.virtualSize, blockSize: blockSize, chunkRatio: chunkRatio,
                            bat: bat, batOffset: batRegion.offset)
        return MappedDisk(name: file.path, mapper: mapper, backing: nil, files: [file],
                          logicalSectorSize: Int(metadata.logicalSectorSize))
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
