public import FerryDisk

/// The disk image formats ferry knows.
public enum ImageFormat: String, CaseIterable, Sendable, Codable {
    case raw, qcow2, vmdk, vhd, vhdx, ova
}

/// The entry point the copy engine and the commands use to turn a path into a disk:
/// detect the format by content, open it read-only, expose its allocation as extents.
public enum DiskImage {
    /// Opens `path` read-only as a virtual disk, detecting the format from its content
    /// unless `format` says otherwise. "-" is standard input (raw, needs `streamSize`).
    public static func openSource(_ path: String, format: ImageFormat? = nil, streamSize: UInt64? = nil) throws -> any BlockDevice {
        if path == "-" { return try LocalDisk.openSource(path, streamSize: streamSize) }
        var chain = ChainGuard()
        return try open(path, format: format, chain: &chain)
    }

    /// Opens one image of a chain (the top image, a backing file, a VMDK parent).
    static func open(_ path: String, format: ImageFormat?, chain: inout ChainGuard) throws -> any BlockDevice {
        try chain.enter(path, structure: "image chain")
        let file = try HostFile.open(path)
        let chosen = try format ?? detect(file.device)
        switch chosen {
        case .raw:
            return file.device
        case .qcow2:
            return try QCOW2.open(file, chain: &chain)
        case .vmdk:
            return try VMDK.open(file, chain: &chain)
        case .vhd:
            return try VHD.open(file, chain: &chain)
        case .vhdx:
            return try VHDX.open(file, chain: &chain)
        case .ova:
            return try OVA.open(file, member: nil, chain: &chain)
        }
    }

    /// The disk members of an OVA archive, in the order its OVF names them.
    public static func ovaDisks(_ path: String) throws -> [String] {
        let file = try HostFile.open(path)
        return try OVA.disks(file, OVA.members(file)).map(\.name)
    }

    /// Opens one disk of an OVA (`member` as listed by `ovaDisks`), read in place.
    public static func openOVADisk(_ path: String, member: String) throws -> any BlockDevice {
        var chain = ChainGuard()
        try chain.enter(path, structure: "image chain")
        return try OVA.open(try HostFile.open(path), member: member, chain: &chain)
    }

    /// Detects the format of the file or device at `path` from its first bytes.
    public static func detect(_ path: String) throws -> ImageFormat {
        let device = try FileDevice.openForReading(path)
        return try detect(device)
    }

    /// Detects the format of an open device from its content. Anything unrecognised is raw.
    public static func detect(_ device: any BlockDevice) throws -> ImageFormat {
        try FormatProbe.detect(device)
    }

    /// The format a target path asks for by its extension (".qcow2" → qcow2), raw otherwise.
    /// Only formats ferry can write are returned.
    public static func format(forTargetPath path: String) -> ImageFormat {
        let lower = path.lowercased()
        if lower.hasSuffix(".qcow2") || lower.hasSuffix(".qcow") { return .qcow2 }
        return .raw
    }

    /// Wraps a freshly created, empty target (a `LocalTarget.device`) as a writer of `format`
    /// holding a virtual disk of `virtualSize` bytes. The writer's `flush()` completes
    /// its metadata. Raw returns the target itself.
    public static func writer(_ format: ImageFormat, over target: any BlockDevice, virtualSize: UInt64) throws -> any BlockDevice {
        switch format {
        case .raw: return target
        case .qcow2:
            guard target.size == 0 else {
                throw DiskError(.exists, target.name, operation: "create",
                                "a qcow2 writer needs a new, empty file; this one holds \(target.size) bytes")
            }
            return try QCOW2.Writer(target: target, virtualSize: virtualSize)
        default:
            throw DiskError(.unsupported, target.name, operation: "create", "writing \(format.rawValue) is not supported yet")
        }
    }
}
