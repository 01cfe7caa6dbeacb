public import ArgumentParser
import FerryCopy
import FerryDisk
import FerryFormats
import Foundation

/// `ferry checksum PATH…`
public struct ChecksumCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "checksum",
        abstract: "Print the disk digest of each path, like sha256sum.",
        discussion: """
            The digest is the blkhash construction over 64 KiB blocks, 32 streams (see \
            docs/digest.md). It depends only on the disk's content: a raw file, its sparse \
            copy and an image of the same disk in any format give the same value, and holes are \
            hashed without being read. Blocks are hashed with XXH3-128 by default, printed as \
            xxh3:HEX: the value `ferry copy` and `ferry send` print (SHA-256 on a host without \
            libxxhash). `--digest sha256` prints blkhash's SHA-256 digest as bare hex, the value \
            of blksum and `nbdcopy --blkhash`.

            Example: prove that a VMDK and the disk it was written to hold the same bytes \
            (the two digests are equal):
              ferry checksum win2003.vmdk /dev/sdb
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "Files, block devices or images; - for standard input (needs --size).")
    var paths: [String]

    @OptionGroup var sourceOptions: SourceOptions

    @Option(help: "Size of standard input, when a path is -.")
    var size: ByteSize?

    @Option(help: "Block hash: xxh3 (the default where libxxhash.so.0 is installed, else sha256; what `ferry copy` and `ferry send` print) or sha256 (blkhash/blksum-compatible, bare hex).")
    var digest: LeafHash?

    @OptionGroup var progressOptions: ProgressOptions

    public init() {}

    public func run() throws {
        Cancellation.installSignalHandlers()
        let leaf = try LeafHash.chosen(digest)
        var failure: (any Error)? = nil
        for path in paths {
            for warning in DiskChecksum.warnings(for: path) {
                try? FileHandle.standardError.write(contentsOf: Data("ferry: warning: \(warning)\n".utf8))
            }
            do {
                let progress = progressOptions.progress
                let value = try DiskChecksum.digest(
                    of: path, format: sourceOptions.sourceFormat, streamSize: size?.bytes, progress: progress, leaf: leaf,
                    allowBacking: sourceOptions.allowBacking, announceSource: { chain in
                        // Like sha256sum, a plain file gets only its digest line; an image, a
                        // chain or a device is named on stderr.
                        if !chain.isPlainFile { SourceOptions.announce(chain, progress: progress) }
                    })
                print("\(value.labelled)  \(path)")
            } catch {
                try? FileHandle.standardError.write(contentsOf: Data((ErrorReporter.line(for: error) + "\n").utf8))
                failure = failure ?? error
            }
        }
        // Each error was printed where it happened; leave with the first one's code.
        if let failure { throw ExitCode(ErrorReporter.exitCode(for: failure).rawValue) }
    }
}
