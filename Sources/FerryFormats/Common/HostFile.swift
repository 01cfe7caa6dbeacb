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
    var size: UInt64 { device.size }

    init(path: String, device: any BlockDevice) {
        self.path = path
        self.device = device
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
    var directory: String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// Resolves a name stored inside this file (a backing file, a VMDK extent)
    /// relative to this file's directory, as qemu and VMware do.
    func resolve(_ name: String) -> String {
        name.hasPrefix("/") ? name : directory + "/" + name
    }
}

/// Tracks the files opened while following a chain of backing files or parents,
/// so a chain that loops back or grows absurdly long fails instead of recursing.
struct ChainGuard: Sendable {
    private(set) var visited: [String] = []

    /// Records `path` (by its canonical name) as the next link, or throws.
    mutating func enter(_ path: String, structure: String) throws {
        let canonical = Self.canonical(path)
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
        visited.append(canonical)
    }

    static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
