public import FerryCopy
public import FerryFormats
public import FerryProtocol

/// What `ferry receive` needs to know.
public struct ReceiveConfiguration: Sendable {
    /// Target paths, one per disk the sender sends, in order.
    public var targets: [String]
    public var listen: HostPort
    /// The pairing code; nil means generate one (ignored when `insecure`).
    public var code: PairingCode?
    /// Plain TCP without pairing; the sender must ask for it too.
    public var insecure = false
    /// Replace existing non-empty target files.
    public var overwrite = false
    /// Delta sync (`--sync`): offer the hash exchange, and update a target that already
    /// holds a copy in place, sending only what differs (docs/protocol.md, "Delta sync").
    public var sync = false
    /// The targets' format when their names should not decide it (`--target-format`).
    public var targetFormat: ImageFormat?
    /// The targets, checked and locked before listening (set by the receive entry points).
    var prepared: ReceiveTargets?
    public var progress: ProgressMode = .auto
    /// Connections that proved a wrong pairing code (a TLS handshake with another code's
    /// key) tolerated before the receiver gives up. Port checks, health checks and
    /// connections that close early are logged and never counted.
    public var maxAuthFailures = 3
    /// Handshakes one peer address may attempt: `attemptBurst` at once, then
    /// `attemptsPerSecond`; more are closed unanswered (and not counted).
    public var attemptBurst = 5
    public var attemptsPerSecond = 1.0
    /// Seconds of silence from the sender, while waiting for it, after which the link
    /// counts as dead (time in which the receiver's own target holds it up does not count).
    public var idleTimeout: Double = 30
    /// Extents verified and written at once.
    public var workers = 4
    /// Seconds a connection may take to pair, and then to say hello, before it is dropped.
    public var helloTimeout: Int64 = 30
    /// After a dropped connection, keep listening this many seconds for the sender to
    /// reconnect and resume (0: fail at once; the journal still allows a rerun).
    public var retryFor: Double = 0
    /// Resume granularity: segments journaled once complete and flushed (whole blocks).
    /// Small enough that a link cut every few dozen MiB still keeps most of what each
    /// connection delivered; a journal record (40 bytes) per 4 MiB is 10 KiB per GiB.
    public var segmentSize = 4 << 20
    /// Flush and journal after this many bytes of progress, or `checkpointInterval`
    /// seconds after the last checkpoint, whichever comes first (and when the link
    /// drops): about the most a receiver killed outright (kill -9, power loss) has to
    /// receive again, plus the segments it had only partly written.
    public var checkpointBytes: UInt64 = 64 << 20
    public var checkpointInterval: Double = 1
    /// Acknowledge progress to the sender every this many bytes.
    public var ackBytes: UInt64 = 16 << 20
    /// Told once the listener is up: where, and the code to give the sender.
    public var announce: @Sendable (ReceiverAnnouncement) -> Void = { _ in }

    public init(targets: [String], listen: HostPort) {
        self.targets = targets
        self.listen = listen
    }
}

public struct ReceiverAnnouncement: Sendable {
    /// The address actually bound (port resolved when 0 was asked for).
    public var listen: HostPort
    public var code: PairingCode?
}

/// What `ferry send` needs to know (the sources are opened by the caller).
public struct SendConfiguration: Sendable {
    public var destination: HostPort
    public var code: PairingCode?
    public var insecure = false
    public var progress: ProgressMode = .auto
    /// Bytes read, hashed and sent per request (a multiple of 64 KiB, at most 4 MiB).
    public var requestSize = 1 << 20
    /// Requests read and hashed at once; each worker holds one request until its bytes
    /// reach the socket, so memory is bounded by workers × request size.
    public var workers = 4
    /// Data bytes per second on the wire, or nil for no limit.
    public var limit: UInt64?
    /// Per-chunk compression.
    public var compress: CompressionMode = .auto
    /// The block hash to use when the receiver has it too (else SHA-256). xxh3 keeps
    /// hashing off the critical path; sha256 gives the digest `blksum` computes.
    public var digest: LeafHash = .xxh3
    /// After a network failure, reconnect and resume for this many seconds.
    public var retryFor: Double = 0
    /// Delta sync (`--sync`): offer the hash exchange (with SHA-256 leaves), so a receiver
    /// that holds an earlier copy is sent only the blocks that differ.
    public var sync = false
    /// Before the first connection: keep trying this long for a receiver still starting
    /// (a mistyped address must not hold a console for all of `retryFor`).
    public var connectWait: Double = 30
    /// Per source, in order: a watch on its path (nil where there is none, e.g. stdin),
    /// checked after the last block is read (`SourceWatch`).
    public var watches: [SourceWatch?] = []
    /// Seconds of silence from the receiver, while waiting for it, after which the link counts as dead.
    public var idleTimeout: Double = 30
    /// Test hook: drop the connection after this many data bytes were sent (simulates a cut link).
    public var dropAfterBytes: UInt64?

    public init(destination: HostPort) {
        self.destination = destination
    }
}

/// What a finished transfer did, per disk.
public struct TransferSummary: Sendable {
    public struct Disk: Sendable {
        public var name: String
        public var size: UInt64
        public var dataBytes: UInt64
        public var zeroBytes: UInt64
        public var digest: DiskDigest
        /// The source's size or times changed while it was read (`SourceWatch`): the
        /// copy matches what was read, which is at best crash-consistent.
        public var sourceChanged: String? = nil
        /// Bytes the zero scout found ahead of the copy and the copy then sent as zeros
        /// without reading them again (`ZeroScout`; a source read whole, a busy link).
        public var zeroScouted: UInt64 = 0
    }

    /// What this side can truthfully say about the copy.
    public enum Verification: Sendable {
        /// Both ends compared every block and the digest, and the target is durable.
        case endToEnd
        /// A one-way stream (`send ... -`): everything was sent; only the receiver
        /// verifies, and its exit status (passed on by ssh) is the verdict.
        case byReceiver
        /// A raw byte stream: nobody verified anything; compare the digests both sides print.
        case none
    }

    public var disks: [Disk]
    public var seconds: Double
    public var verification: Verification = .endToEnd
}

extension SendConfiguration {
    func watch(_ index: Int) -> SourceWatch? {
        watches.indices.contains(index) ? watches[index] : nil
    }
}
