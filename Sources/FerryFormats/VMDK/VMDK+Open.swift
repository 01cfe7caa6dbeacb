import FerryBinary
import FerryDisk

#if canImport(Glibc)
import Glibc
#endif

extension VMDK {
    /// Opens a VMDK (descriptor file, monolithic sparse or stream-optimized file)
    /// read-only, with its parent chain.
    static func open(_ file: HostFile, chain: inout ChainGuard) throws -> MappedDisk {
        try openImage(file, chain: &chain).disk
    }

    /// The disk and its descriptor's CID (for checking a child's parentCID).
    static func openImage(_ file: HostFile, chain: inout ChainGuard) throws -> (disk: MappedDisk, cid: UInt32?) {
        do {
            return try openChecked(file, chain: &chain)
        } catch let error as FormatError {
            throw error.inFile(file.path)
        }
    }

    private static func openChecked(_ file: HostFile, chain: inout ChainGuard) throws -> (disk: MappedDisk, cid: UInt32?) {
        let magic = try file.bytes(at: HostOffset(0), count: Int(min(file.size, 4)), "VMDK file").littleEndian(UInt32.self, at: 0)
        var descriptor: Descriptor?
        var pieces: [Mapper.Piece] = []
        var files = [file]
        switch magic {
        case VMDK.sparseMagic?:
            let extent = try SparseExtent.open(file, length: nil)
            descriptor = try embeddedDescriptor(file, extent.header)
            pieces = [Mapper.Piece(start: 0, length: extent.length, map: .sparse(extent))]
        case VMDK.cowdMagic?:
            throw file.error(.unsupportedFeature, COWDExtent.structure, at: 0,
                             "this is a snapshot delta extent; open its descriptor (e.g. vm-000001.vmdk) instead")
        default:
            guard file.size <= UInt64(FormatLimits.maxDescriptorBytes) else {
                throw file.error(.badMagic, Descriptor.structure, at: 0,
                                 "neither a sparse extent (KDMV) nor a text descriptor (\(file.size) bytes is too large for one)")
            }
            let text = String(decoding: try file.bytes(at: HostOffset(0), count: Int(file.size), Descriptor.structure), as: UTF8.self)
            let parsed = try Descriptor(parsing: text, file: file.path)
            descriptor = parsed
            (pieces, files) = try extentPieces(parsed, descriptorFile: file, chain: &chain)
        }
        var backing: (any BlockDevice)?
        if let descriptor, descriptor.parentCID != VMDK.noParent {
            backing = try openParent(of: descriptor, file: file, chain: &chain)
        }
        let disk = MappedDisk(name: file.path, mapper: Mapper(pieces: pieces), backing: backing, files: files)
        return (disk, descriptor?.cid)
    }

    /// The descriptor embedded in a sparse extent, if any (NUL-padded text).
    private static func embeddedDescriptor(_ file: HostFile, _ header: SparseHeader) throws -> Descriptor? {
        guard header.descriptorOffset != 0, header.descriptorSize != 0 else { return nil }
        let bytes = try Checked.multiply(header.descriptorSize, VMDK.sectorSize, "descriptorSize", structure: SparseHeader.structure)
        guard bytes <= UInt64(FormatLimits.maxDescriptorBytes) else {
            throw file.error(.limitExceeded, SparseHeader.structure, field: "descriptorSize", at: 36,
                             "an embedded descriptor of \(bytes) bytes exceeds the \(FormatLimits.maxDescriptorBytes)-byte limit")
        }
        let at = try Checked.multiply(header.descriptorOffset, VMDK.sectorSize, "descriptorOffset", structure: SparseHeader.structure)
        let raw = try file.bytes(at: HostOffset(at), count: Int(bytes), Descriptor.structure)
        let text = String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        return try Descriptor(parsing: text, file: file.path, baseOffset: at)
    }

    /// Opens every extent a descriptor lists and lays them end to end.
    private static func extentPieces(
        _ descriptor: Descriptor, descriptorFile: HostFile, chain: inout ChainGuard
    ) throws -> ([Mapper.Piece], [HostFile]) {
        var pieces: [Mapper.Piece] = []
        var files = [descriptorFile]
        var start: UInt64 = 0
        for (index, line) in descriptor.extents.enumerated() {
            let s = "VMDK descriptor extent \(index)"
            let length = try Checked.multiply(line.sectors, VMDK.sectorSize, "size", structure: s)
            let map: ExtentMap
            if line.access == .noAccess || line.type == .zero {
                map = line.type == .zero ? .zero : .hole
            } else {
                let name = line.fileName ?? ""
                let file = try chain.openNamed(name, at: descriptorFile.resolve(name), by: descriptorFile, as: "extent")
                files.append(file)
                switch line.type {
                case .flat, .vmfs:
                    let base = try Checked.multiply(line.offset, VMDK.sectorSize, "offset", structure: s)
                    let end = try Checked.add(base, length, "offset", structure: s)
                    guard end <= file.size else {
                        throw file.error(.truncated, s, at: base,
                                         "the flat extent holds \(file.size) bytes but the descriptor maps \(length) bytes at \(base)")
                    }
                    map = .flat(file, HostOffset(base))
                case .sparse:
                    map = .sparse(try SparseExtent.open(file, length: length))
                case .vmfsSparse:
                    map = .cowd(try COWDExtent(file: file))
                case .seSparse:
                    map = .seSparse(try SESparseExtent(file: file))
                case .vmfsRDM, .vmfsRaw:
                    throw file.error(.unsupportedFeature, s, "this is a raw device mapping; copy from the mapped LUN instead")
                case .zero:
                    map = .zero
                }
            }
            pieces.append(Mapper.Piece(start: start, length: length, map: map))
            start = try Checked.add(start, length, "size", structure: s)
        }
        guard !pieces.isEmpty else {
            throw descriptorFile.error(.inconsistent, Descriptor.structure, "the descriptor lists no extents")
        }
        return (pieces, files)
    }

    /// Opens the parent named by `parentFileNameHint` and checks its CID. An
    /// absolute hint (a path on the ESXi host) that does not exist here is
    /// looked up by its base name beside the child.
    private static func openParent(of descriptor: Descriptor, file: HostFile, chain: inout ChainGuard) throws -> any BlockDevice {
        guard let hint = descriptor.parentFileNameHint, !hint.isEmpty else {
            throw file.error(.inconsistent, Descriptor.structure, field: "parentFileNameHint",
                             "parentCID is set but no parentFileNameHint names the parent")
        }
        var path = file.resolve(hint)
        if hint.hasPrefix("/"), !chain.exists(path), let slash = hint.lastIndex(of: "/") {
            path = file.resolve(String(hint[hint.index(after: slash)...]))
        }
        try chain.enter(path, structure: "VMDK parent chain")
        let parentFile = try chain.openNamed(hint, at: path, by: file, as: "parent (parentFileNameHint)")
        chain.record(parentFile, .vmdk, .named, role: .parent)
        let (parent, cid) = try openImage(parentFile, chain: &chain)
        guard let cid, cid == descriptor.parentCID else {
            throw file.error(.inconsistent, Descriptor.structure, field: "parentCID",
                             "parentCID \(String(descriptor.parentCID, radix: 16)) does not match the CID \(cid.map { String($0, radix: 16) } ?? "(none)") of the parent \(path); the parent changed after the snapshot was taken")
        }
        return parent
    }
}
