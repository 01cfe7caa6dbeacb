public import FerryDisk

/// Where the files of an image live when they are not local files: a datastore read over
/// HTTPS, an archive. `DiskImage.open(source:files:policy:)` opens the top image and every file
/// it names (VMDK extents and parents, qcow2 backing files) through it, with the format readers
/// unchanged.
///
/// Names are `/`-separated and relative to the source's root; ferry has already refused names
/// that leave it (absolute, or with a `..` component) before asking.
public protocol ImageFileSource: Sendable {
    /// Opens the file `path` read-only, as a random-access device of the file's size.
    func open(_ path: String) throws -> any BlockDevice
    /// True when `path` exists (VMDK parent hints that are absolute paths on the original host
    /// are looked up by their base name when they do not).
    func exists(_ path: String) -> Bool
}

extension ImageFileSource {
    public func exists(_ path: String) -> Bool { false }
}

/// The "file" that names the top image of a remote source: nothing to read, it only lends
/// its path to messages.
final class NullParent: BlockDevice {
    var name: String { "(source)" }
    var size: UInt64 { 0 }
    var logicalSectorSize: Int { 512 }
    var capabilities: DiskCapabilities { [.randomAccess] }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
    }
}
