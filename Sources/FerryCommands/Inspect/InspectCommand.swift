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
        discussion: """
            Reads only metadata, read-only. Exit status 0 even when verdicts fail; use --json for \
            machines (see docs/inspect.md).

            Example: will this Windows guest boot on KVM's IDE or VirtIO controller?
              ferry inspect win2003.vmdk
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "The disk image or block device.")
    public var path: String

    @Flag(help: "Print the report as JSON.")
    public var json = false

    @OptionGroup public var sourceOptions: SourceOptions

    public init() {}

    public func run() throws {
        let opened = try DiskImage.open(source: path, policy: sourceOptions.policy)
        let disk = opened.disk
        defer { try? disk.close() }
        var report = try GuestInspector.inspect(disk)
        report.source = opened.chain
        report.warnings += opened.chain.warnings
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.summary)
        }
    }
}
