public import ArgumentParser
import FerryESXi
import FerryFormats
import FerryNBD

/// The `ferry` command: moves virtual machine disks between hypervisors.
public struct Ferry: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Move virtual machine disks between hypervisors: fast, safe and verified.",
        discussion: """
            Example: copy a VMware disk onto a block device, written safely (its first block last):
              ferry copy win2003.vmdk /dev/sdb
            """ + "\n\n" + FerryExit.helpLine,
        version: BuildInfo.versionLine,
        subcommands: [
            CopyCommand.self, ChecksumCommand.self, SendCommand.self, ReceiveCommand.self, InspectCommand.self,
            FixCommand.self, DemoCommand.self,
            PlanCommand.self,
            ExplainCommand.self,
            ServeCommand.self,
            ESXiCommand.self,
        ])

    public init() {}

    /// Parses and runs a command; every failure of every command leaves through
    /// `ErrorReporter`: one line on standard error and the code of the one table.
    public static func main() async {
        DiskSchemes.register(ESXiScheme())
        DiskSchemes.register(NBDScheme())
        do {
            var command = try await asyncParseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            ErrorReporter.exit(with: error)
        }
    }
}
