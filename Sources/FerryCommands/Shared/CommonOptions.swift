public import ArgumentParser
public import FerryCopy
import FerryFormats

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
