public import ArgumentParser
public import FerryCopy
public import FerryFormats
public import FerryESXi
import Foundation

extension ProgressMode: ExpressibleByArgument {}
extension ImageFormat: ExpressibleByArgument {}
extension LeafHash: ExpressibleByArgument {
    public init?(argument: String) { self.init(named: argument) }
    public static var allValueStrings: [String] { allCases.map(\.name) }
    public var defaultValueDescription: String { name }
}

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

    @OptionGroup public var esxi: ESXiOptions

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

/// The flags of esxi:// sources (password, certificate, running VMs), for every command that
/// opens a source and for `ferry esxi`.
public struct ESXiOptions: ParsableArguments {
    @Option(
        name: .customLong("password-file"),
        help: ArgumentHelp("esxi:// sources: the host's password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).", valueName: "FILE"))
    public var passwordFile: String?

    @Option(
        name: .customLong("esxi-fingerprint"),
        help: ArgumentHelp("esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).", valueName: "SHA256"))
    public var esxiFingerprint: String?

    @Flag(name: .customLong("esxi-insecure"), help: "esxi:// sources: do not check the host's certificate at all (a warning is printed on every run).")
    public var esxiInsecure = false

    @Flag(name: .customLong("force"), help: "esxi:// sources: read a running VM's disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).")
    public var force = false

    /// Applies the esxi:// flags: the ESXi scheme every command opens sources through is
    /// registered again with them, once the command line is parsed and before the command runs.
    public mutating func validate() throws {
        DiskSchemes.register(ESXiScheme(settings: try esxiSettings()))
    }

    /// The ESXi settings these flags give.
    public func esxiSettings() throws -> ESXiSettings {
        var settings = ESXiSettings(passwordFile: passwordFile, insecure: esxiInsecure)
        if let esxiFingerprint {
            do { settings.fingerprint = try CertificateFingerprint(parsing: esxiFingerprint) } catch {
                throw ValidationError("--esxi-fingerprint: \(error)")
            }
        }
        settings.allowRunning = force
        return settings
    }

    public init() {}
}
