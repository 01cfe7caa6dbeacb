public import FerryDisk

/// The disk image formats ferry knows.
public enum ImageFormat: String, CaseIterable, Sendable, Codable {
    case raw, qcow2, vmdk, vhd, vhdx, ova

    /// The formats ferry can write as a target.
    public static let writable: [ImageFormat] = [.raw, .qcow2]

    public var isWritable: Bool { Self.writable.contains(self) }

    /// The image format a file name names by its extension, or nil for a name that names
    /// none (`disk.raw`, `disk.img`, `/dev/sdb`, `-`). Case-insensitive.
    public init?(forName path: String) {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return nil }
        switch base[base.index(after: dot)...].lowercased() {
        case "qcow2", "qcow": self = .qcow2
        case "vmdk": self = .vmdk
        case "vhd", "avhd": self = .vhd
        case "vhdx", "avhdx": self = .vhdx
        case "ova", "ovf": self = .ova
        default: return nil
        }
    }
}

/// A source opened under a `SourcePolicy`: the disk, and the files it is made of.
public struct OpenedSource: Sendable {
    public let disk: any BlockDevice
    public let chain: SourceChain

    /// Public so that a `DiskScheme` in another module can return one.
    public init(disk: any BlockDevice, chain: SourceChain) {
        self.disk = disk
        self.chain = chain
    }
}

/// The entry point the copy engine and the commands use to turn a path into a disk:
/// detect the format by content, open it read-only, expose its allocation as extents.
public enum DiskImage {
    /// Opens `path` read-only as a virtual disk under `policy` (see `SourcePolicy`:
    /// a block device is raw, a regular file is probed, every file an image names
    /// stays inside the source's directory). "-" is standard input (raw, needs `streamSize`).
    /// A URI (`nbd://…`) goes to the `DiskScheme` registered for it (see `DiskSchemes`).
    public static func open(source path: String, policy: SourcePolicy = SourcePolicy(), streamSize: UInt64? = nil) throws -> OpenedSource {
        if let scheme = try DiskSchemes.scheme(for: path) {
            return try scheme.openSource(path, policy: policy)
        }
        if path == "-" {
            let disk = try LocalDisk.openSource(path, streamSize: streamSize)
            let image = SourceChain.Image(role: .source, path: path, format: .raw, reason: .stream)
            return OpenedSource(disk: disk, chain: SourceChain(images: [image]))
        }
        var chain = try ChainGuard(policy: policy)
        try chain.enter(path, structure: "image chain")
        let disk = try open(try HostFile.open(path), format: policy.format, role: .source, chain: &chain)
        return OpenedSource(disk: disk, chain: chain.opened)
    }

    /// Opens `name`, a file of `files` (a datastore over HTTPS, say), read-only as a virtual
    /// disk: the format is detected by content unless `policy.format` names it, and every file
    /// the image names (extents, parents, backing files) is opened through `files`, resolved
    /// against the naming file's directory and refused when it leaves the tree (`..`, absolute).
    /// `policy.allowedDirectories` does not apply: a remote source has no local directories.
    public static func open(source name: String, files: any ImageFileSource, policy: SourcePolicy = SourcePolicy()) throws -> OpenedSource {
        var chain = ChainGuard(files: files)
        try chain.enter(name, structure: "image chain")
        let top = try chain.openNamed(name, at: name, by: HostFile(path: name, device: NullParent(), isRemote: true), as: "source")
        let disk = try open(top, format: policy.format, role: .source, chain: &chain)
        return OpenedSource(disk: disk, chain: chain.opened)
    }

        /// `open(source:)` with only a format: the disk alone.
    public static func openSource(_ path: String, format: ImageFormat? = nil, streamSize: UInt64? = nil) throws -> any BlockDevice {
        try open(source: path, policy: SourcePolicy(format: format), streamSize: streamSize).disk
    }

    /// Opens one image of a chain (the top image, a qcow2 backing file): `format` if
    /// given, else the content's format for a regular file and raw for anything else.
    static func open(_ file: HostFile, format: ImageFormat?, role: SourceChain.Image.Role, chain: inout ChainGuard) throws -> any BlockDevice {
        let chosen: ImageFormat
        let reason: SourceChain.Image.Reason
        if let format {
            (chosen, reason) = (format, .named)
        } else if file.isRegularFile {
            (chosen, reason) = (try detect(file.device), .detected)
        } else {
            (chosen, reason) = (.raw, .blockDevice)
        }
        chain.record(file, chosen, reason, role: role)
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
        let file = try HostFile.open(path)
        chain.record(file, .ova, .named, role: .source)
        return try OVA.open(file, member: member, chain: &chain)
    }

    /// The format `open(source:)` reads `path` as without `--source-format`: a regular
    /// file's by its first bytes, raw for a block device (whose content is never probed).
    public static func detect(_ path: String) throws -> ImageFormat {
        let device = try FileDevice.openForReading(path)
        return device.kind == .regularFile ? try detect(device) : .raw
    }

    /// Detects the format of an open device from its content. Anything unrecognised is raw.
    public static func detect(_ device: any BlockDevice) throws -> ImageFormat {
        try FormatProbe.detect(device)
    }

    /// The format ferry writes to `path`: the one rule every command that writes follows.
    ///
    /// - `explicit` (`--target-format`) wins when ferry can write it; naming a format ferry
    ///   cannot write is refused.
    /// - Otherwise the name decides: `.qcow2`/`.qcow` → qcow2; a name of a format ferry
    ///   cannot write yet (`.vmdk`, `.vhd`, `.vhdx`, `.avhd`, `.avhdx`, `.ova`, `.ovf`) is
    ///   refused, so nothing is written under a name that lies about its content;
    ///   anything else (`.raw`, `.img`, a device, `-`, `null:`) is raw.
    /// - A URI (`nbd://…`) is raw whatever its name; an explicit format other than raw is refused.
    ///
    /// Throws `DiskError(.unsupported, path, operation: "create")` before anything is opened.
    public static func targetFormat(forPath path: String, explicit: ImageFormat? = nil) throws -> ImageFormat {
        // A remote disk (`nbd://…/disk.qcow2`) is written as the bytes of the disk itself:
        // its server decides how it stores them, whatever the export is called.
        if DiskSchemes.uriScheme(of: path) != nil {
            guard explicit == nil || explicit == .raw else {
                throw DiskError(
                    .unsupported, path, operation: "create",
                    "a URI target is written as the disk's own bytes (its server stores them as it likes); --target-format \(explicit?.rawValue ?? "") applies to files only")
            }
            return .raw
        }
        if let explicit {
            guard explicit.isWritable else {
                throw DiskError(
                    .unsupported, path, operation: "create",
                    "ferry cannot write \(explicit.rawValue) images yet (it writes \(ImageFormat.writable.map(\.rawValue).joined(separator: " and ")))")
            }
            return explicit
        }
        guard let named = ImageFormat(forName: path) else { return .raw }
        guard named.isWritable else {
            throw DiskError(
                .unsupported, path, operation: "create",
                "the name asks for a \(named.rawValue) image, which ferry cannot write yet; "
                    + "name the target .qcow2 or .raw, or pass --target-format raw to write raw bytes under this name")
        }
        return named
    }

    /// Opens an existing disk for writing in place (`ferry fix`, `ferry copy --fix`): a raw
    /// file or a block device (opened with O_EXCL, never probed) as itself, a qcow2 file as
    /// an updater of its virtual disk (`QCOW2.Updater`: copy-on-write into new clusters,
    /// metadata made durable by `flush()`; a backing file is read, never written). Any other
    /// format is refused before anything is written. `format` skips detection.
    public static func openForUpdate(_ path: String, format: ImageFormat? = nil) throws -> (disk: any BlockDevice, format: ImageFormat) {
        let device = try FileDevice.openForWriting(path)
        let chosen = try format ?? (device.kind == .regularFile ? detect(device) : .raw)
        switch chosen {
        case .raw:
            return (device, .raw)
        case .qcow2:
            do {
                return (try QCOW2.openForUpdate(device), .qcow2)
            } catch {
                try? device.close()
                throw error
            }
        default:
            try? device.close()
            throw DiskError(.unsupported, path, operation: "update",
                            "is a \(chosen.rawValue) image; ferry writes in place to raw disks, block devices and qcow2 images only (ferry copy it to .qcow2 or raw first)")
        }
    }

    /// The backing file an image opened by `openForUpdate` reads through (its writes go
    /// to the image itself, the overlay), or nil.
    public static func backingFile(ofUpdated disk: any BlockDevice) -> String? {
        (disk as? QCOW2.Updater)?.backingPath
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
