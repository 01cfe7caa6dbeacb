public import ArgumentParser

/// The `ferry` command: moves virtual machine disks between hypervisors.
public struct Ferry: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Move virtual machine disks between hypervisors: fast, safe and verified.",
        discussion: """
            Exit codes: 0 success, 1 unexpected failure, 3 verification failed, 64 usage, \
            65 damaged or unsupported input, 66 source not found, 69 network failure, \
            73 target cannot be created or written, 74 I/O error, 76 protocol error, \
            77 authentication failed (wrong pairing code), \
            130 interrupted.
            """,
        version: "0.1.0",
        subcommands: [
            CopyCommand.self, ChecksumCommand.self, SendCommand.self, ReceiveCommand.self, InspectCommand.self,
            DemoCommand.self,
        ])

    public init() {}
}
