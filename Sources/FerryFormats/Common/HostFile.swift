import FerryBinary
import FerryDisk

#if canImport(Glibc)
import Glibc
#endif

/// A byte offset inside an image *file* (host side), as opposed to an offset inside
/// the virtual disk the image describes (guest side). Kept distinct so the classic
/// "added a guest offset to a host offset" bug does not type-check.
struct HostOffset: Hashable, Comparable, Sendable, CustomStringConvertible {
    var bytes: UInt64
    init(_ bytes: UInt64) { self.bytes = bytes }
    static func < (a: HostOffset, b: HostOffset) -> Bool { a.bytes < b.bytes }
    var description: String { String(bytes) }
}

/// One file an image is made of (the image, a VMDK extent, a backing file), opened
/// read-only. Every read is bounds-checked against the file size and fails with a
/// `FormatError` naming this file and the structure being read.
final class HostFile: Sendable {
    let path: String
    let device: any BlockDevice
    /// True for a file of an `ImageFileSource`: a regular file there, probed like one.
    let isRemote: Bool
    var size: UInt64 { device.size }

    init(path: String, device: any BlockDevice, isRemote: Bool = false) {
        self.path = path
        self.device = device
        self.isRemote = isRemote
    }

    static func open(_ path: String) throws -> HostFile {
        HostFile(path: path, device: try FileDevice.openForReading(path))
    }

    /// A `FormatError` about this file.
    func error(
        _ code: FormatError.Code, _ structure: String, field: String? = nil, at offset: UInt64? = nil, _ detail: String
    ) -> FormatError {
        FormatError(code, structure: structure, field: field, offset: offset, file: path, detail)
    }

    /// Checks that `count` bytes at `offset` lie inside the file.
    func checkInside(_ offset: HostOffset, _ count: UInt64, _ structure: String, field: String? = nil) throws {
        let (end, overflow) = offset.bytes.addingReportingOverflow(count)
        guard !overflow, end <= size else {
            throw error(
                .outOfRange, structure, field: field, at: offset.bytes,
                "\(count) bytes at offset \(offset) run past the end of the \(size)-byte file")
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: HostOffset, _ structure: String) throws {
        try checkInside(offset, UInt64(buffer.count), structure)
        try device.read(into: buffer, at: offset.bytes)
    }

    func bytes(at offset: HostOffset, count: Int, _ structure: String) throws -> [UInt8] {
        guard count >= 0 else { throw error(.outOfRange, structure, at: offset.bytes, "negative length \(count)") }
        try checkInside(offset, UInt64(count), structure)
        return try device.readBytes(at: offset.bytes, count: count)
    }

    /// A reader over `count` bytes at `offset`, whose errors carry the file offset.
    func reader(at offset: HostOffset, count: Int, _ structure: String) throws -> ByteReader {
        ByteReader(try bytes(at: offset, count: count, structure), structure: structure, baseOffset: offset.bytes)
    }

    /// The directory holding this file, for resolving relative names inside it.
    var directory: String { ChainGuard.directory(of: path) }

    /// True for a regular file (whose content may be probed); false for a block
    /// device or a member of an archive.
    var isRegularFile: Bool { isRemote || (device as? FileDevice)?.kind == .regularFile }

    /// Resolves a name stored inside this file (a backing file, a VMDK extent)
    /// relative to this file's directory, as qemu and VMware do.
    func resolve(_ name: String) -> String {
        name.hasPrefix("/") ? name : directory + "/" + name
    }
}

/// Tracks the files opened while following a chain of backing files or parents,
/// so a chain that loops back or grows absurdly long fails instead of recursing, and
/// confines every file an image names to the directories `SourcePolicy` allows.
struct ChainGuard: Sendable {
    private(set) var visited: [String] = []
    /// What was opened, top first (see `SourceChain`).
    private(set) var opened = SourceChain()
    /// Real paths of the directories named files may lie in: the allowed ones, then
    /// (once the top image is entered) the top image's own.
    private(set) var roots: [String]
    /// The user's `--allow-backing` directories as given, for messages.
    private let allowed: [String]
    /// Where named files are opened, when not on the local file system.
    let files: (any ImageFileSource)?

    /// A guard with no directory allowed beyond the source's own.
    init() {
        allowed = []
        roots = []
        files = nil
    }

    /// A guard for an image whose files `files` opens: names are confined lexically (no `..`,
    /// not absolute), as the source cannot be asked for real paths.
    init(files: any ImageFileSource) {
        allowed = []
        roots = []
        self.files = files
    }

    /// A guard for one source under `policy`. Throws when an allowed directory does
    /// not exist or is not a directory (a typo must not silently allow nothing).
    init(policy: SourcePolicy) throws {
        allowed = policy.allowedDirectories
        roots = []
        files = nil
        for dir in policy.allowedDirectories {
            var st = stat()
            guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, let real = Self.realPath(dir) else {
                throw DiskError(.notFound, dir, operation: "open", "--allow-backing names \(dir), which is not a directory")
            }
            roots.append(real)
        }
    }

    /// Records `path` (by its canonical name) as the next link, or throws. The first
    /// path entered is the source itself: its directory becomes an allowed root.
    mutating func enter(_ path: String, structure: String) throws {
        let canonical = files == nil ? Self.canonical(path) : path
        if visited.contains(canonical) {
            throw FormatError(
                .cycle, structure: structure, file: path,
                "the chain of backing files loops back to \(path) (chain: \(visited.joined(separator: " -> ")))")
        }
        guard visited.count < FormatLimits.maxChainDepth else {
            throw FormatError(
                .limitExceeded, structure: structure, file: path,
                "the chain of backing files is longer than \(FormatLimits.maxChainDepth) images")
        }
        if visited.isEmpty, files == nil, let dir = Self.realPath(Self.directory(of: path)) { roots.append(dir) }
        visited.append(canonical)
    }

    /// Notes something a person should know about the source that does not stop the copy.
    mutating func warn(_ text: String) { opened.warnings.append(text) }

    /// Notes an image of the chain, in the order opened.
    mutating func record(_ file: HostFile, _ format: ImageFormat, _ reason: SourceChain.Image.Reason, role: SourceChain.Image.Role) {
        opened.images.append(SourceChain.Image(role: role, path: file.path, format: format, reason: reason))
    }

    /// Opens `path`, which `parent` names as `name` (a backing file, a parent, an
    /// extent), refusing a file outside the allowed roots. Checked twice: the path
    /// before opening (nothing outside is even opened), and the file actually opened,
    /// by the name the kernel gives its descriptor (a symbolic link swapped in
    /// between is caught). A name that does not resolve fails when opened.
    mutating func openNamed(_ name: String, at path: String, by parent: HostFile, as what: String) throws -> HostFile {
        let file: HostFile
        if let files {
            file = try Self.openConfined(name, at: path, by: parent, as: what, in: files)
        } else {
            file = try openLocal(name, at: path, by: parent, as: what)
        }
        if what == "extent", let index = opened.images.lastIndex(where: { $0.path == parent.path }) {
            opened.images[index].extents.append(file.path)
        }
        return file
    }

    /// True when `path` names a file: asked of the file source for a remote image.
    func exists(_ path: String) -> Bool {
        guard let files else { return access(path, F_OK) == 0 }
        return files.exists(path)
    }

    /// A remote name must stay inside the source: relative, no `..` component.
    private static func openConfined(_ name: String, at path: String, by parent: HostFile, as what: String,
                                     in files: any ImageFileSource) throws -> HostFile {
        let parts = path.split(separator: "/").filter { $0 != "." }
        guard !path.hasPrefix("/"), !parts.isEmpty, !parts.contains("..") else {
            throw FormatError(
                .notAllowed, structure: "source policy", field: what, file: parent.path,
                "the \(what) \"\(name)\" leaves the directory tree of the source (absolute or with ..); ferry opens only files inside it")
        }
        let clean = parts.joined(separator: "/")
        return HostFile(path: clean, device: try files.open(clean), isRemote: true)
    }

    private func openLocal(_ name: String, at path: String, by parent: HostFile, as what: String) throws -> HostFile {
        if let real = Self.realPath(path) { try confine(real, name: name, by: parent, as: what) }
        let file = try HostFile.open(path)
        if let fd = (file.device as? FileDevice)?.descriptor.rawValue,
           let real = Self.readLink("/proc/self/fd/\(fd)") ?? Self.realPath(path)
        {
            try confine(real, name: name, by: parent, as: what)
        }
        return file
    }

    private func confine(_ real: String, name: String, by parent: HostFile, as what: String) throws {
        let inside = roots.contains { root in root == "/" || real == root || real.hasPrefix(root + "/") }
        guard !inside else { return }
        let top = visited.first.map { Self.directory(of: $0) } ?? parent.directory
        var detail = "the \(what) \"\(name)\" resolves to \(real), outside \(top)"
        if !allowed.isEmpty { detail += " and the --allow-backing directories (\(allowed.joined(separator: ", ")))" }
        detail += "; ferry opens only files beside the source. If you trust this image, pass --allow-backing \(Self.directory(of: real))"
        throw FormatError(.notAllowed, structure: "source policy", field: what, file: parent.path, detail)
    }

    static func canonical(_ path: String) -> String { realPath(path) ?? path }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.hasPrefix("/") ? text : nil
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }
}
