import FerryDisk
import Foundation
public import Testing

/// Loop devices for tests of block-device targets: needs root and losetup.
public enum LoopDevice {
    /// Attaches `file` to a free loop device, or prints why not and returns nil.
    public static func attach(_ file: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String? {
        guard Tools.requireRoot("the loop device tests", sourceLocation: sourceLocation) else { return nil }
        guard Tools.require("losetup", sourceLocation: sourceLocation) else { return nil }
        let result = try Tools.run("losetup", ["-f", "--show", file])
        guard result.status == 0 else {
            Skip.because("losetup could not attach a loop device here: \(result.stderr)", sourceLocation: sourceLocation)
            return nil
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public static func detach(_ device: String) { _ = try? Tools.run("losetup", ["-d", device]) }

    /// The first 64 KiB of `device` as the kernel has it now.
    public static func firstBlock(_ device: String) throws -> [UInt8] {
        let disk = try FileDevice.openForReading(device)
        defer { try? disk.close() }
        return try disk.readBytes(at: 0, count: 65536)
    }
}
