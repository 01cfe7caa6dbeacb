import FerryBinary
import FerryDisk

/// The entry point of the NTFS fuzz target (`FuzzTesting/`) and of the tests that replay its
/// crash inputs. The input is a `FuzzPagedInput` of 4 KiB pages holding a bare volume; the
/// work is what the guest inspector does: boot sector, $MFT, path lookups through the
/// directory indexes, a bounded read of a file, the volume's status files.
public enum NTFSFuzz {
    public static let pageSize = 4096
    /// Most bytes read from one file.
    public static let readLimit = 1 << 20

    /// Paths looked up on every input (the inspector's first reads on Windows).
    public static let paths = ["/WINDOWS/system32/config/SYSTEM", "/Windows/System32/config/SOFTWARE", "/boot.ini"]

    public static func run(_ bytes: [UInt8]) throws {
        let volume = try NTFSVolume(device: FuzzPagedInput.device(bytes, pageSize: pageSize))
        for path in paths {
            if let stream = try volume.open(path) { _ = try stream.readAll(limit: readLimit) }
        }
        _ = try volume.label()
        _ = try volume.volumeInformation()
        _ = try volume.hibernationState()
        _ = volume.journalState()
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is FormatError || error is DiskError }
}
