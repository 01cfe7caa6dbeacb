public import ArgumentParser
import FerryBinary
import FerryCopy
import FerryDisk
import FerryFormats
import FerryTransfer
import Foundation

/// `ferry send SOURCE... HOST[:PORT] --code CODE`
public struct SendCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send disks to a waiting `ferry receive`, encrypted and verified.",
        discussion: """
            Every block is hashed once and checked by the receiver before it is written; both ends \
            compare the disk digest, and success is reported only once the target is on stable storage. \
            Several disks go in parallel over one connection; after a cut, running the same two commands \
            again resumes every disk (a disk already committed is proven by hash, not sent again).

            Example: on the old host, send its disk with the code `ferry receive` printed:
              ferry send /dev/sda 192.0.2.10:9123 --code ty7m-h5e6-azjm-2gz7
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "Source disks or images, then the receiver's HOST[:PORT] (default port 9000), or - to write the stream to stdout (for `| ssh host ferry receive TARGET --stdin`).")
    var operands: [String] = []

    @OptionGroup var transfer: TransferOptions

    @OptionGroup var sourceOptions: SourceOptions

    @Option(name: .long, help: "Bandwidth limit in bytes per second (e.g. 100M or 100M/s).")
    var limit: Rate?

    @Option(name: .long, help: "Per-chunk compression: auto (by compressibility and bottleneck), none, zstd, lz4, gzip.")
    var compress = "auto"

    @Option(name: .long, help: "Block hash: xxh3 (fast; the default, used when the receiver has it too) or sha256 (the digest blksum and `ferry checksum --digest sha256` print).")
    var digest: LeafHash?

    @Flag(name: .long, help: "Delta sync (warm migration): a receiver run with --sync that holds an earlier copy is sent only the blocks that differ (block hashes keyed XXH3-128 with a key the receiver draws per pass, or SHA-256 with --digest sha256). Repeat while the guest runs; only the pass after shutdown is the migration.")
    var sync = false

    @Flag(name: .long, help: "Send a plain byte stream (no protocol, no encryption) to a plain `nc -l PORT > disk.img`.")
    var raw = false

    @Option(name: .long, help: "Requests read and hashed at once (each holds one request in memory).")
    var workers = 4

    @Option(name: .customLong("request-size"), help: "Bytes per request (64K to 4M).")
    var requestSize = 1 << 20

    public init() {}

    public func run() async throws {
        try await runTransfer("send") {
            guard operands.count >= 2, let destinationText = operands.last else {
                throw TransferError(.usage, "usage: ferry send SOURCE... HOST[:PORT] --code CODE")
            }
            let toStdout = destinationText == "-"
            var config = SendConfiguration(
                destination: toStdout ? HostPort(host: "-", port: 0) : try HostPort(parsing: destinationText, defaultHost: "127.0.0.1"))
            config.code = try transfer.pairingCode()
            config.insecure = transfer.insecure
            config.progress = transfer.progress
            config.retryFor = try transfer.retrySeconds()
            config.connectWait = min(config.connectWait, config.retryFor)
            config.limit = limit?.bytesPerSecond
            config.workers = max(1, workers)
            guard let mode = CompressionMode(rawValue: compress) else {
                throw TransferError(.usage, "--compress must be one of auto, none, zstd, lz4, gzip")
            }
            config.compress = mode
            config.requestSize = requestSize
            config.digest = digest ?? .preferred
            config.sync = sync
            if sync && (raw || toStdout) {
                throw TransferError(.usage, "--sync needs the receiver's answers: it cannot be used with --raw or a one-way stream (-)")
            }
            CodecNotice.announce(digest: sync ? .sha256 : digest, compress: mode)
            if !toStdout { transfer.warnIfInsecure() }
            var sources: [any BlockDevice] = []
            for path in operands.dropLast() {
                do {
                    let opened = try DiskImage.open(source: path, policy: sourceOptions.policy)
                    SourceOptions.announce(opened.chain, progress: config.progress)
                    sources.append(opened.disk)
                } catch let error as DiskError {
                    throw TransferError(error)
                } catch let error as FormatError {
                    throw TransferError(error)
                }
            }
            // Size and times of each source, compared after its last block is read.
            config.watches = operands.dropLast().map { SourceWatch(path: $0) }
            if raw {
                guard sources.count == 1, let source = sources.first, !toStdout else {
                    throw TransferError(.usage, "--raw sends one source to HOST:PORT")
                }
                try? FileHandle.standardError.write(contentsOf: Data("ferry send: WARNING: --raw: plaintext, unauthenticated, not verified by the receiver\n".utf8))
                return try RawTransfer.send(
                    source: source, to: config.destination, progress: config.progress, watch: config.watches.first ?? nil)
            }
            if toStdout {
                // One-way stream for `| ssh host ferry receive TARGET --stdin`. A reader
                // that goes away is an EPIPE to report (exit 69), not a silent SIGPIPE.
                signal(SIGPIPE, SIG_IGN)
                return try PipeTransfer.send(sources: sources, to: 1, config)
            }
            return try await TransferSender.run(sources: sources, config)
        }
    }
}
