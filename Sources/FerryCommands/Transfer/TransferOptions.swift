import ArgumentParser
import FerryCopy
import FerryDisk
import FerryProtocol
import FerryTransfer
import Foundation

/// Flags `ferry send` and `ferry receive` share.
struct TransferOptions: ParsableArguments {
    @Option(name: .long, help: "The pairing code (16 symbols, e.g. 7kqm-2xrt-9pfa-w3ne). The receiver makes one up when omitted.")
    var code: String?

    @Flag(name: .long, help: "Plain TCP without pairing or encryption. Both sides must pass it; use only on a trusted link or inside ssh.")
    var insecure = false

    @OptionGroup var progressOptions: ProgressOptions

    @Option(name: .customLong("retry-for"), help: "After a dropped connection, reconnect and resume until this long after the last progress (e.g. 30s, 5m, 1h; 0 to fail at once).")
    var retryFor = "5m"

    func pairingCode() throws -> PairingCode? {
        guard let code else { return nil }
        do {
            return try PairingCode(parsing: code)
        } catch {
            throw TransferError(.usage, "--code: \(error.detail)")
        }
    }

    var progress: ProgressMode { progressOptions.progress }

    func retrySeconds() throws -> Double {
        var text = retryFor.lowercased()
        var unit = 1.0
        if let last = text.last, let u = ["s": 1.0, "m": 60.0, "h": 3600.0][String(last)] {
            unit = u
            text.removeLast()
        }
        guard let value = Double(text), value >= 0, value.isFinite else {
            throw TransferError(.usage, "--retry-for: '\(retryFor)' is not a duration like 30s, 5m or 1h")
        }
        return value * unit
    }

    func warnIfInsecure() {
        if insecure {
            try? FileHandle.standardError.write(contentsOf: 
                Data("ferry: WARNING: --insecure: the disk crosses the network unencrypted and anyone who can reach the port can write it\n".utf8))
        }
    }
}

/// Runs a transfer body and turns its failure into one line and the documented exit code.
func runTransfer(_ command: String, _ body: () async throws -> TransferSummary) async throws {
    do {
        let summary = try await body()
        try? FileHandle.standardError.write(contentsOf: Data(summaryLines(command, summary).utf8))
    } catch let error as TransferError {
        try? FileHandle.standardError.write(contentsOf: Data("ferry \(command): \(error.message)\n".utf8))
        throw ExitCode(ErrorReporter.exitCode(for: error).rawValue)
    } catch let error as DiskError {
        // A target refused before anything listened (exists, in use, locked, too small): the
        // same line and exit code as `ferry copy` gives it.
        try? FileHandle.standardError.write(contentsOf: Data("ferry \(command): \(error)\n".utf8))
        throw ExitCode(ErrorReporter.exitCode(for: error).rawValue)
    }
}

/// One summary at the end of a session: a line per disk (on the sender with the data
/// bytes that crossed the wire, so a resumed disk shows what it did not resend), and a
/// total when there were several disks. "verified" only where both ends compared the
/// digests: a one-way stream's sender and raw mode say what they can know.
func summaryLines(_ command: String, _ summary: TransferSummary) -> String {
    var text = ""
    let verdict: String
    switch summary.verification {
    case .endToEnd: verdict = "verified"
    case .byReceiver: verdict = "sent (the receiver verifies: its exit status is the verdict)"
    case .none: verdict = command == "send" ? "sent, not verified" : "received, not verified"
    }
    for disk in summary.disks {
        text += "ferry \(command): \(disk.name): \(verdict), digest \(disk.digest.labelled)"
        text += "; \(ByteCount.format(disk.size))"
        text += command == "send" ? ", \(ByteCount.format(disk.dataBytes)) of data sent\n" : "\n"
        if summary.verification == .none {
            text += "ferry \(command): compare this digest with the one the other end printed\n"
        }
        if let change = disk.sourceChanged {
            text += "ferry \(command): \(disk.name): WARNING: \(change) while it was read: the copy is what was read, "
            text += "at best crash-consistent (as after a power cut); stop the guest or copy a snapshot for a consistent one\n"
        }
    }
    if summary.disks.count > 1 {
        let total = summary.disks.reduce(UInt64(0)) { $0 + $1.size }
        let done = summary.verification == .endToEnd ? "verified and durable" : "sent"
        text += "ferry \(command): \(summary.disks.count) disks, \(ByteCount.format(total)), \(done) in \(String(format: "%.1f", summary.seconds)) s\n"
    }
    return text
}
