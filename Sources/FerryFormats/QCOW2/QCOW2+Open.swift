import FerryDisk
import FerryBinary

extension QCOW2 {
    /// Opens a qcow2 image read-only, with its backing chain.
    static func open(_ file: HostFile, chain: inout ChainGuard) throws -> MappedDisk {
        do {
            return try openChecked(file, chain: &chain)
        } catch let error as FormatError {
            throw error.inFile(file.path)
        }
    }

    private static func openChecked(_ file: HostFile, chain: inout ChainGuard) throws -> MappedDisk {
        // Cluster 0 holds the header, its extensions and the backing name; read the
        // fixed part first to learn the cluster size.
        let fixed = try file.bytes(at: HostOffset(0), count: Int(min(file.size, 112)), Header.structure)
        guard fixed.count >= 72 else {
            throw file.error(.truncated, Header.structure, at: 0, "the file holds \(file.size) bytes, a header needs at least 72")
        }
        // Magic, version and cluster_bits are validated by the full parse below; an
        // out-of-range value here just reads a short cluster 0 and fails there.
        let bits = fixed.bigEndian(UInt32.self, at: 20).map { min(max($0, 9), 21) } ?? 9
        let probe = UInt64(1) << UInt64(bits)
        let cluster0 = try file.bytes(at: HostOffset(0), count: Int(min(file.size, probe)), Header.structure)
        let header = try Header(parsing: cluster0)
        let l1 = try readL1(file, header)
        let mapper = Mapper(file: file, header: header, l1: l1)
        var backing: (any BlockDevice)?
        if let name = header.backingFile {
            let path = file.resolve(name)
            let format = try backingFormat(header.backingFormat, file: file)
            try chain.enter(path, structure: "image chain")
            let backingFile = try chain.openNamed(name, at: path, by: file, as: "backing file")
            backing = try DiskImage.open(backingFile, format: format, role: .backing, chain: &chain)
        }
        return MappedDisk(name: file.path, mapper: mapper, backing: backing, files: [file])
    }

    /// Reads and validates the L1 table: large enough for the virtual size,
    /// cluster aligned, inside the file and below the table size limit.
    private static func readL1(_ file: HostFile, _ header: Header) throws -> [UInt64] {
        let span = header.clusterSize * header.l2Entries  // guest bytes per L1 entry
        let needed = header.size / span + (header.size % span == 0 ? 0 : 1)
        guard UInt64(header.l1Size) >= needed else {
            throw file.error(.inconsistent, Header.structure, field: "l1_size", at: 36,
                             "l1_size \(header.l1Size) cannot map a virtual size of \(header.size) bytes (needs \(needed))")
        }
        let bytes = UInt64(header.l1Size) * 8
        guard bytes <= UInt64(FormatLimits.maxTableBytes) else {
            throw file.error(.limitExceeded, Header.structure, field: "l1_size", at: 36,
                             "an L1 table of \(bytes) bytes exceeds the \(FormatLimits.maxTableBytes)-byte limit")
        }
        guard header.l1TableOffset & (header.clusterSize - 1) == 0 else {
            throw file.error(.inconsistent, Header.structure, field: "l1_table_offset", at: 40,
                             "L1 table offset \(header.l1TableOffset) is not cluster aligned")
        }
        if header.l1Size == 0 { return [] }
        let raw = try file.bytes(at: HostOffset(header.l1TableOffset), count: Int(bytes), "qcow2 L1 table")
        return decodeBigEndian(raw)
    }

    /// Maps the backing-format extension to a format. Without it qemu probes; so do
    /// we, but a recorded "raw" is honoured and never probed (a guest can write a
    /// qcow2 header into its own raw disk).
    private static func backingFormat(_ name: String?, file: HostFile) throws -> ImageFormat? {
        guard let name else { return nil }
        switch name {
        case "raw", "file", "host_device": return .raw
        case "qcow2": return .qcow2
        case "vmdk": return .vmdk
        case "vpc": return .vhd
        case "vhdx": return .vhdx
        default:
            throw file.error(.unsupportedFeature, "qcow2 backing format extension",
                             "the backing file has format \"\(name)\", which ferry does not read")
        }
    }
}
