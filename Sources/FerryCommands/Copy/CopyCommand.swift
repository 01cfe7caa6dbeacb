public import ArgumentParser
import FerryCopy
import FerryDisk
import FerryFormats
import Foundation

/// `ferry copy SRC DST`
public struct CopyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a disk or image to a file, a block device, or standard output.",
        discussion: """
            Holes and zero blocks are never copied as bytes; the target gets them as holes \
            (files) or efficient zeroing (devices). A new file is written under a temporary name \
            and renamed when complete; a block device's or an NBD export's first block is written last. \
            SRC may be "-" (standard input, needs --size); DST may be "-" (standard output) or "null:".

            The digest is computed on the fly with XXH3-128 block hashes (printed as xxh3:HEX; \
            SHA-256 on a host without libxxhash), so hashing stays off the copy's critical path; \
            `ferry checksum` gives the same value later. `--digest sha256` gives the blkhash \
            digest that blksum and `nbdcopy --blkhash` print (see docs/digest.md).

            Example: convert a VMware disk to qcow2, then re-read the target and compare digests:
              ferry copy win2003.vmdk win2003.qcow2 --verify
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "The source: a raw file, an image, a block device, or - for standard input.")
    var source: String

    @Argument(help: "The target: a new file, a block device, a writable NBD export (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH), - for standard output, or null:.")
    var target: String

    @OptionGroup var sourceOptions: SourceOptions

    @Option(
        name: .customLong("target-format"),
        help: "Target format (raw or qcow2). By default the name decides: .qcow2 is qcow2, a .vmdk/.vhd/.vhdx/.ova name is refused (ferry cannot write those yet), anything else is raw.")
    var targetFormat: ImageFormat?

    @Option(help: "Size of a source read from standard input (e.g. 50G).")
    var size: ByteSize?

    @Flag(help: "Replace an existing non-empty target file.")
    var overwrite = false

    @Flag(name: .customLong("target-is-zero"), help: "Promise that the target already reads as zeros, so zero runs are skipped.")
    var targetIsZero = false

    @Flag(help: "Re-read the target after the copy and compare its digest with the source's.")
    var verify = false

    @Flag(help: "After the copy, read the target back (as --verify) and apply ferry fix's default steps to it (a raw or qcow2 file, or a block device).")
    var fix = false

    @Option(help: "Block hash of the digest: xxh3 (the default where libxxhash.so.0 is installed, else sha256; printed as xxh3:HEX, the value `ferry checksum` prints) or sha256 (blkhash/blksum/`nbdcopy --blkhash`-compatible).")
    var digest: LeafHash?

    @Option(help: "Requests in flight (default: one per core, at least 2).")
    var workers: Int?

    @OptionGroup var progressOptions: ProgressOptions

    public init() {}

    public func run() throws {
        Cancellation.installSignalHandlers()
        var config = CopyConfiguration(source: source, target: target)
        config.sourceFormat = sourceOptions.sourceFormat
        config.allowBacking = sourceOptions.allowBacking
        let progress = progressOptions.progress
        config.announceSource = { SourceOptions.announce($0, progress: progress) }
        config.targetFormat = targetFormat
        config.streamSize = size?.bytes
        config.overwrite = overwrite
        config.targetIsZero = targetIsZero
        if fix {
            if DiskSchemes.uriScheme(of: target) != nil { throw ValidationError("--fix: " + FixCommand.uriRefusal(target)) }
            let format = try DiskImage.targetFormat(forPath: target, explicit: targetFormat)
            guard target != "-", target != "null:", format == .raw || format == .qcow2 else {
                throw ValidationError("--fix needs a raw or qcow2 target file or a block device (the fix edits it in place); \(target) is not one")
            }
        }
        config.verify = verify || fix
        config.progress = progressOptions.progress
        if let workers { config.options.workers = max(1, workers) }
        config.options.leaf = try LeafHash.chosen(digest)
        let report = try DiskCopy.run(config)
        let r = report.result
        var line = "copied \(ByteCount.format(r.size)) from \(report.sourceName) to \(report.targetName)"
        line += " in \(String(format: "%.2f", r.seconds)) s (data \(ByteCount.format(r.dataBytes)), zero \(ByteCount.format(r.zeroBytes)))"
        var lines = [line]
        if let digest = r.digest { lines.append("digest \(digest.labelled)") }
        if report.verifiedDigest != nil { lines.append("verified: the target reads back with the same digest") }
        // With the data on stdout, the summary goes to stderr.
        let text = lines.joined(separator: "\n") + "\n"
        if target == "-" {
            try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
        } else {
            print(text, terminator: "")
        }
        if fix { print(try FixCommand.fixTarget(target)) }
    }
}
