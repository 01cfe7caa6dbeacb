import FerryBinary
import FerryDisk

/// The entry point of the MBR/GPT fuzz target (`FuzzTesting/`) and of the tests that replay
/// its crash inputs. The input is a `FuzzPagedInput` of 512-byte sectors, so a GPT's backup
/// header at the last sector of a 32 MiB disk costs one page, not 32 MiB.
public enum PartitionsFuzz {
    public static let sectorSize = 512

    /// Reads the partition table of the disk `bytes` describe.
    public static func run(_ bytes: [UInt8]) throws {
        _ = try PartitionReader.read(FuzzPagedInput.device(bytes, pageSize: sectorSize))
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is FormatError || error is DiskError }
}
