public import ArgumentParser
import FerryFix
import FerryFormats
import FerryTransfer
import Foundation

/// `ferry receive TARGET... [--listen ADDR:PORT]`
public struct ReceiveCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Wait for `ferry send` and write the disks it sends into TARGET(s).",
        discussion: """
            Prints a pairing code and the exact command to run on the source host. The channel is \
            TLS 1.3 with both ends authenticated by keys derived from the code; after 3 connections \
            that prove a wrong code the receiver gives up (port checks and early closes are logged, not \
            counted). Every target is checked and locked before the receiver listens, and written only \
            once a peer has paired; a target named .qcow2 is written as qcow2.

            Example: on the new host, wait for one disk and write it to /dev/vda:
              ferry receive /dev/vda --listen 0.0.0.0:9123
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "Target files, block devices or writable NBD exports (nbd://…), one per disk sent, in the sender's order (the disks travel in parallel).")
    var targets: [String] = []

    @Option(name: .long, help: "Address and port to listen on (default 0.0.0.0:9000).")
    var listen = "0.0.0.0:9000"

    @OptionGroup var transfer: TransferOptions

    @Flag(name: .long, help: "Replace existing non-empty target files.")
    var overwrite = false

    @Flag(name: .long, help: "Delta sync (warm migration): with `ferry send --sync`, a target that already holds a copy of the disk is updated in place and only the blocks that differ cross the link (implies --overwrite).")
    var sync = false

    @Option(name: .customLong("target-format"), help: "Target format, when the targets' names should not decide it (a name ending .qcow2 is written as qcow2).")
    var targetFormat: ImageFormat?

    @Flag(name: .long, help: "Accept a plain byte stream (`dd if=/dev/sda | nc HOST PORT`): progress, zero elision and a digest, but no pairing or verification.")
    var raw = false

    @Option(name: .long, help: "With --raw: the disk size in bytes (needed for file targets; a block device knows its size).")
    var size: UInt64?

    @Flag(name: .long, help: "Read the stream from stdin (`ferry send SOURCE - | ssh host ferry receive TARGET --stdin`); ssh provides the security.")
    var stdin = false

    @Flag(help: "After the disks are received and verified, apply ferry fix's default steps to each target that holds Windows (raw or qcow2 targets, block devices).")
    var fix = false

    public init() {}

    public func run() async throws {
        if fix {
            for target in targets where DiskSchemes.uriScheme(of: target) != nil {
                throw TransferError(.usage, "--fix: " + FixCommand.uriRefusal(target))
            }
            for target in targets where try target == "-" || ![.raw, .qcow2].contains(DiskImage.targetFormat(forPath: target, explicit: targetFormat)) {
                throw TransferError(.usage, "--fix needs raw or qcow2 target files or block devices (the fix edits them in place); \(target) is not one")
            }
        }
        var received: TransferSummary?
        try await runTransfer("receive") {
            let summary = try await receive()
            received = summary
            return summary
        }
        guard fix, let received else { return }
        guard received.verification != .none else {
            throw TransferError(.usage, "--fix applies only to verified disks; this transfer was not verified (--raw), so nothing was fixed")
        }
        var fixedAny = false
        for target in targets {
            do {
                print(try FixCommand.fixTarget(target))
                fixedAny = true
            } catch let error as FixError where error.code == .noWindows {
                print("ferry receive: \(target): no Windows to fix")
            }
        }
        guard fixedAny else { throw FixError(.noWindows, "--fix: none of the received disks holds Windows; nothing was fixed") }
    }

    func receive() async throws -> TransferSummary {
        guard !targets.isEmpty else { throw TransferError(.usage, "usage: ferry receive TARGET... [--listen ADDR:PORT]") }
        var config = ReceiveConfiguration(
            targets: targets, listen: try HostPort(parsing: listen, defaultHost: "0.0.0.0"))
        config.code = try transfer.pairingCode()
        config.insecure = transfer.insecure
        config.progress = transfer.progress
        config.retryFor = try transfer.retrySeconds()
        config.overwrite = overwrite || sync
        config.sync = sync
        config.targetFormat = targetFormat
        if sync && (raw || stdin) {
            throw TransferError(.usage, "--sync needs a two-way session: it cannot be used with --raw or --stdin")
        }
        if stdin { return try PipeTransfer.receive(from: 0, config) }
        if raw {
            guard targets.count == 1, let target = targets.first else {
                throw TransferError(.usage, "--raw receives one disk")
            }
            try? FileHandle.standardError.write(contentsOf: Data("ferry receive: WARNING: --raw: anyone who can reach the port can write the target\n".utf8))
            return try RawTransfer.receive(
                target: target, size: size, listen: config.listen, overwrite: overwrite, progress: config.progress,
                targetFormat: targetFormat
            ) { address in
                let host = address.reachableHosts().first ?? address.host
                try? FileHandle.standardError.write(contentsOf: Data(
                    "ferry receive: listening on \(address); on the source run:\n    dd if=/dev/sdX bs=1M | nc -N \(host) \(address.port)\n".utf8))
            }
        }
        transfer.warnIfInsecure()
        let insecure = transfer.insecure
        config.announce = { announcement in
            let host = announcement.listen.reachableHosts().first ?? announcement.listen.host
            let destination = HostPort(host: host, port: announcement.listen.port)
            var lines = "ferry receive: listening on \(announcement.listen)\n"
            if let code = announcement.code { lines += "ferry receive: pairing code \(code)\n" }
            lines += "ferry receive: on the source host run:\n    ferry send SOURCE \(destination)"
            lines += announcement.code.map { " --code \($0)" } ?? (insecure ? " --insecure" : "")
            lines += "\n"
            try? FileHandle.standardError.write(contentsOf: Data(lines.utf8))
        }
        return try await TransferReceiver.run(config)
    }
}
