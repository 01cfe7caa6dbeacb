import CFerryShims
public import FerryDisk
public import FerryFormats

/// Everything `ferry copy` needs to know.
public struct CopyConfiguration: Sendable {
    public var source: String
    public var target: String
    public var sourceFormat: ImageFormat?
    public var targetFormat: ImageFormat?
    /// Directories besides the source's own whose files its image may name (`--allow-backing`).
    public var allowBacking: [String] = []
    /// Told what the source turned out to be, once both ends are open and before any data moves.
    public var announceSource: (@Sendable (SourceChain) -> Void)?
    /// Size of a source read from standard input.
    public var streamSize: UInt64?
    public var overwrite = false
    public var targetIsZero = false
    public var verify = false
    public var progress: ProgressMode = .auto
    public var options = CopyOptions()

    public init(source: String, target: String) {
        self.source = source
        self.target = target
    }
}

/// What `ferry copy` did.
public struct CopyReport: Sendable {
    public var result: CopyResult
    public var sourceName: String
    public var targetName: String
    /// The target's digest re-read after the copy, when `verify` was asked.
    public var verifiedDigest: DiskDigest?
}

/// A digest mismatch between two ends of a copy.
public struct VerificationError: Error, Sendable, CustomStringConvertible {
    public var expected: DiskDigest
    public var actual: DiskDigest
    public var what: String

    public init(expected: DiskDigest, actual: DiskDigest, what: String) {
        self.expected = expected
        self.actual = actual
        self.what = what
    }

    public var description: String {
        "verification failed: \(what) has digest \(actual.hex), expected \(expected.hex)"
    }
}

/// Local copies: open both ends safely, run the engine, then `TargetCommit` (verify
/// before block 0 and before the rename).
public enum DiskCopy {
    public static func run(_ config: CopyConfiguration, cancellation: Cancellation = .interrupt) throws -> CopyReport {
        // The target's format is settled before the source is opened: nothing is read or
        // written for a target name ferry would have to lie about.
        let format = try DiskImage.targetFormat(forPath: config.target, explicit: config.targetFormat)
        let opened = try DiskImage.open(
            source: config.source, policy: SourcePolicy(format: config.sourceFormat, allowedDirectories: config.allowBacking),
            streamSize: config.streamSize)
        let source = opened.disk
        if config.verify && (config.target == "-" || config.target == "null:") {
            throw DiskError(.unsupported, config.target, operation: "verify", "--verify needs a target that can be read back")
        }
        let commit = try TargetCommit.open(config.target, size: source.size, format: format, overwrite: config.overwrite)
        do {
            config.announceSource?(opened.chain)
            var options = config.options
            options.targetIsZero = config.targetIsZero || commit.knownZero
            let counters = CopyCounters()
            let reporter = ProgressReporter(mode: config.progress, phase: "copy", total: source.size, counters: counters)
            reporter.start()
            let result: CopyResult
            do {
                result = try CopyEngine.run(
                    source: source, target: commit.device, options: options, counters: counters, cancellation: cancellation)
                reporter.stop()
            } catch {
                reporter.stop()
                throw error
            }
            let verified = try commit.commit(
                digest: result.digest, verify: config.verify && result.digest != nil, progress: config.progress,
                cancellation: cancellation)
            return CopyReport(result: result, sourceName: source.name, targetName: config.target, verifiedDigest: verified)
        } catch {
            commit.abandon()
            throw error
        }
    }
}

/// `ferry checksum`: the disk digest of any path ferry can read.
public enum DiskChecksum {
    public static func digest(
        of path: String, format: ImageFormat? = nil, streamSize: UInt64? = nil, length: UInt64? = nil,
        progress: ProgressMode = .none, leaf: LeafHash = .sha256, cancellation: Cancellation = .interrupt,
        allowBacking: [String] = [], announceSource: ((SourceChain) -> Void)? = nil
    ) throws -> DiskDigest {
        let opened = try DiskImage.open(
            source: path, policy: SourcePolicy(format: format, allowedDirectories: allowBacking), streamSize: streamSize)
        announceSource?(opened.chain)
        return try digest(of: opened.disk, length: length, phase: "checksum", progress: progress, leaf: leaf, cancellation: cancellation)
    }

    /// The digest of an open disk (its first `length` bytes, when given).
    public static func digest(
        of disk: any BlockDevice, length: UInt64? = nil, phase: String, progress: ProgressMode, leaf: LeafHash,
        cancellation: Cancellation
    ) throws -> DiskDigest {
        var disk = disk
        if let length, length != disk.size { disk = try DeviceSlice(disk, length: length) }
        let counters = CopyCounters()
        let reporter = ProgressReporter(mode: progress, phase: phase, total: disk.size, counters: counters)
        reporter.start()
        defer { reporter.stop() }
        var options = CopyOptions()
        options.leaf = try leaf.loaded()
        let result = try CopyEngine.run(source: disk, target: nil, options: options, counters: counters, cancellation: cancellation)
        guard let digest = result.digest else { throw DigestError("no digest was computed") }
        return digest
    }

    /// Why a later reader should not trust `path` yet, if ferry can tell: a partial file
    /// beside it, or a block device whose first sector is blank (ferry writes it last).
    public static func warnings(for path: String) -> [String] {
        var warnings: [String] = []
        if path != "-", let _ = try? FileDevice.openForReading(LocalTarget.partialName(for: path)) {
            warnings.append(
                "\(LocalTarget.partialName(for: path)) exists: a ferry copy to \(path) was interrupted; the partial data is not \(path)")
        }
        if LocalDisk.isBlockDevice(path), let device = try? FileDevice.openForReading(path), device.size >= 512,
            let sector = try? device.readBytes(at: 0, count: 512), sector.allSatisfy({ $0 == 0 })
        {
            warnings.append(
                "\(path) has an empty first sector (no boot code or partition table); an interrupted ferry copy leaves a device this way")
        }
        return warnings
    }
}
