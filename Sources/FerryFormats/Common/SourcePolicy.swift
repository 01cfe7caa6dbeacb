/// What ferry may open when it opens a source (the qemu CVE-2008-2004 class).
///
/// A guest writes its own disk, so the content of a block device, and of any image
/// file, is the guest's to choose: a raw disk that starts with a qcow2 header naming
/// `/etc/shadow` as its backing file would otherwise copy a host file into the output.
/// The rules:
///
/// - A block device is raw: its content is never probed. Only `format` (the user's
///   `--source-format`) makes ferry read a device as an image.
/// - A regular file's format is detected by content, unless `format` names it;
///   `--source-format raw` reads any file as raw, never probed.
/// - Every further file an image names (qcow2 backing file, VMDK extents and
///   parentFileNameHint, VHD parent locators, VHDX parent locator) must resolve,
///   after following every symbolic link, to a path inside the directory of the
///   source the user named, or inside one of `allowedDirectories` (`--allow-backing
///   DIR`). `..`, absolute paths and symbolic links that lead elsewhere are refused
///   with a `FormatError` (code `.notAllowed`) naming the path and the option.
///   The check runs on the path before it is opened and again on the file actually
///   opened (its `/proc/self/fd` name), so a link swapped in between is caught too.
public struct SourcePolicy: Sendable, Equatable {
    /// The source's format, when the user names it; nil detects a regular file's
    /// format by content and reads a block device as raw.
    public var format: ImageFormat?
    /// Directories, besides the source's own, whose files an image may name.
    public var allowedDirectories: [String]

    public init(format: ImageFormat? = nil, allowedDirectories: [String] = []) {
        self.format = format
        self.allowedDirectories = allowedDirectories
    }
}

/// The files a source turned out to be made of, top first: what ferry opened, in the
/// order it opened them, so a person can see that nothing else was read.
///
/// `description` is one line: `x.qcow2: qcow2, backing base.vmdk (vmdk, 2 extents)`.
public struct SourceChain: Sendable, Equatable, Codable, CustomStringConvertible {
    public struct Image: Sendable, Equatable, Codable {
        /// How this image is linked to the one before it.
        public enum Role: String, Sendable, Codable {
            case source, backing, parent
        }

        /// Why ferry read the image in this format.
        public enum Reason: String, Sendable, Codable {
            /// Recognised by content (a regular file).
            case detected
            /// Named by the user (`--source-format`) or by the image that links to it
            /// (a qcow2 backing format, a VMDK/VHD/VHDX parent is of its child's format).
            case named
            /// A block device: read as raw, never probed.
            case blockDevice
            /// Standard input: a raw stream.
            case stream
        }

        public var role: Role
        public var path: String
        public var format: ImageFormat
        public var reason: Reason
        /// Extent files opened for this image (VMDK descriptors), in descriptor order.
        public var extents: [String] = []

        /// Public so that a `DiskScheme` in another module can describe what it opened.
        public init(role: Role, path: String, format: ImageFormat, reason: Reason, extents: [String] = []) {
            self.role = role
            self.path = path
            self.format = format
            self.reason = reason
            self.extents = extents
        }
    }

    public var images: [Image] = []
    /// What a person should know about the source that does not stop the copy
    /// (an OVA disk larger than its OVF says).
    public var warnings: [String] = []

    public init(images: [Image] = [], warnings: [String] = []) {
        self.images = images
        self.warnings = warnings
    }

    /// True for a lone regular file read as raw by detection, with nothing to warn of:
    /// there is nothing to tell about it beyond its name.
    public var isPlainFile: Bool {
        images.count == 1 && images[0].format == .raw && images[0].reason == .detected && warnings.isEmpty
    }

    public var description: String {
        guard let top = images.first else { return "(nothing opened)" }
        var notes: [String] = []
        switch top.reason {
        case .blockDevice: notes.append("block device, read as raw, never probed")
        case .stream: notes.append("standard input")
        case .named: notes.append("as --source-format says")
        case .detected: break
        }
        if !top.extents.isEmpty { notes.append(Self.count(top.extents.count, "extent")) }
        var text = "\(Self.display(top.path)): \(top.format.rawValue)"
        if !notes.isEmpty { text += " (" + notes.joined(separator: ", ") + ")" }
        for image in images.dropFirst() {
            var inner = [image.format.rawValue]
            if image.reason == .blockDevice { inner.append("block device, read as raw") }
            if !image.extents.isEmpty { inner.append(Self.count(image.extents.count, "extent")) }
            text += ", \(image.role.rawValue) \(Self.display(image.path)) (\(inner.joined(separator: ", ")))"
        }
        return text
    }

    private static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// A path as the user would write it: "./base.vmdk" is "base.vmdk".
    private static func display(_ path: String) -> String {
        path.hasPrefix("./") ? String(path.dropFirst(2)) : path
    }
}
