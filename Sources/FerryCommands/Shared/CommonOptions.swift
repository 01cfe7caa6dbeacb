public import ArgumentParser
public import FerryCopy
public import FerryFormats
import Foundation

extension ProgressMode: ExpressibleByArgument {}
extension ImageFormat: ExpressibleByArgument {}
extension LeafHash: ExpressibleByArgument {}

/// `--progress` for every long-running command.
public struct ProgressOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Progress display: auto (a live line on a terminal, nothing otherwise), tty, json (JSON lines on stderr), none.")
    public var progress: ProgressMode = .auto

    public init() {}
}

/// Parses sizes like 1048576, 512K, 64M, 10G, 2T (binary units).
public struct ByteSize: ExpressibleByArgument, Sendable {
    public var bytes: UInt64

    public init?(argument: String) {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var text = argument.uppercased()
        if text.hasSuffix("IB") { text.removeLast(2) } else if text.hasSuffix("B") { text.removeLast() }
        var multiplier: UInt64 = 1
        if let last = text.last, let unit = units[last] {
            multiplier = unit
            text.removeLast()
        }
        guard let value = UInt64(text) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        self.bytes = bytes
    }
}

/// A rate in bytes per second: a `ByteSize`, optionally followed by `/s` (100M, 100M/s, 1GiB/s).
public struct Rate: ExpressibleByArgument, Sendable {
    public var bytesPerSecond: UInt64

    public init?(argument: String) {
        var text = argument
        if text.lowercased().hasSuffix("/s") { text.removeLast(2) }
        guard let size = ByteSize(argument: text), size.bytes > 0 else { return nil }
        bytesPerSecond = size.bytes
    }
}

/// How a source is opened, for every command that reads one (copy, send, checksum,
/// inspect): see `SourcePolicy` and the README's "Sources".
public struct SourceOptions: ParsableArguments {
    @Option(
        name: [.customLong("source-format"), .customLong("format")],
        help: "Source format (raw, qcow2, vmdk, vhd, vhdx, ova) instead of detecting it. Regular files are detected by content; block devices are raw unless this says otherwise; raw is never probed.")
    public var sourceFormat: ImageFormat?

    @Option(
        name: .customLong("allow-backing"),
        help: ArgumentHelp(
            "Also allow backing files, parents and extents in DIR (repeatable). Without it an image may name only files in its own directory.",
            valueName: "DIR"))
    public var allowBacking: [String] = []

    public init() {}

    public var policy: SourcePolicy {
        SourcePolicy(format: sourceFormat, allowedDirectories: allowBacking)
    }

    /// Says on stderr what a source turned out to be, before any data moves:
    /// `ferry: source x.qcow2: qcow2, backing base.vmdk (vmdk, 2 extents)`, or one JSON
    /// line (`{"source": …}`) when progress is JSON lines.
    public static func announce(_ chain: SourceChain, progress: ProgressMode) {
        var line = "ferry: source \(chain)"
        if progress == .json {
            struct Event: Encodable { var source: SourceChain; var summary: String }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            if let data = try? encoder.encode(Event(source: chain, summary: chain.description)) {
                line = String(decoding: data, as: UTF8.self)
            }
        }
        let warnings = progress == .json ? [] : chain.warnings.map { "ferry: warning: \($0)" }
        try? FileHandle.standardError.write(contentsOf: Data(([line] + warnings).map { $0 + "\n" }.joined().utf8))
    }
}
