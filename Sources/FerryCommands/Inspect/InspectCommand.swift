public import ArgumentParser
import FerryDisk
import FerryFormats
import FerryGuest
import Foundation

/// `ferry inspect PATH`: read a guest disk offline and say whether it will boot on KVM.
public struct InspectCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Inspect a guest disk: partitions, file systems, Windows boot facts and verdicts.",
        discussion: "Reads only metadata, read-only. Exit status 0 even when verdicts fail; use --json for machines (see docs/inspect.md). " + FerryExit.helpLine)

    @Argument(help: "The disk image or block device.")
    public var path: String

    @Flag(help: "Print the report as JSON.")
    public var json = false

    @Option(help: "Image format instead of detecting it (raw, qcow2, vmdk, vhd, vhdx).")
    public var format: String?

    public init() {}

    public func validate() throws {
        if let format, ImageFormat(rawValue: format) == nil {
            throw ValidationError("unknown format \"\(format)\"; use one of \(ImageFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    public func run() throws {
        let disk = try DiskImage.openSource(path, format: format.flatMap(ImageFormat.init(rawValue:)))
        defer { try? disk.close() }
        let report = try GuestInspector.inspect(disk)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.summary)
        }
    }
}
