public import FerryDisk
public import FerryFormats

/// The one way a target becomes a disk, for every command that writes one (copy,
/// receive, pipe and raw modes):
///
/// ```
///  1 flush            the writer's data and metadata reach stable storage
///  2 compare          the digest of what was written against the one it must equal
///  3 verify           (--verify) re-read the target, block 0 from memory, and compare again
///  4 whenVerified     the caller's last word (the receiver journals the commit)
///  5 block 0, flush   a held first block is written (block devices, NBD exports), and
///                    (--verify) read back from the device
///  6 rename, fsync    the partial file gets its final name; the directory is synced
/// ```
/// Until step 5 `abandon()` is always possible and leaves nothing under the final
/// name and no block 0. A target format (qcow2) is written through its writer over
/// the local target; the verification re-reads it through the format's reader.
public final class TargetCommit: Sendable {
    public let target: LocalTarget
    public let format: ImageFormat
    /// What the data is written to: the format's writer over `target.device`.
    public let device: any BlockDevice
    /// The target reads as zeros before anything is written: zero runs need no writes.
    public let knownZero: Bool
    /// The virtual size of the disk written: what a verification re-reads.
    public let size: UInt64
    private let ownLock: TargetLock?

    /// Wraps an opened local target (a new or reopened one) as a writer of `format`.
    /// Anything but raw needs a new, empty target (`LocalTarget.open` with size 0).
    public init(target: LocalTarget, format: ImageFormat, virtualSize: UInt64, ownLock: TargetLock? = nil) throws {
        self.target = target
        self.format = format
        self.ownLock = ownLock
        size = virtualSize
        device = try DiskImage.writer(format, over: target.device, virtualSize: virtualSize)
        knownZero = target.knownZero && format == .raw
    }

    /// Locks (unless `lock` is the caller's), checks and opens `path` — a path or a URI
    /// (`DiskTargets`) — for a disk of `size` bytes in `format`.
    public static func open(
        _ path: String, size: UInt64, format: ImageFormat, overwrite: Bool, lock: TargetLock? = nil
    ) throws -> TargetCommit {
        let ownLock = lock == nil ? try DiskTargets.lock(path) : nil
        do {
            // Image writers start from an empty file; raw targets get the virtual size up front.
            let local = try DiskTargets.open(
                path, size: format == .raw ? size : 0, overwrite: overwrite, lock: lock ?? ownLock)
            do {
                return try TargetCommit(target: local, format: format, virtualSize: size, ownLock: ownLock)
            } catch {
                local.abandon()
                throw error
            }
        } catch {
            ownLock?.release()
            throw error
        }
    }

    public var path: String { target.path }

    /// True when the target can be read back to verify it (not a stream or null:).
    public var canVerify: Bool { target.path != "-" && target.path != "null:" }

    /// Runs the commit (see the type's steps). `digest` is what was written (the
    /// copy engine's or the receiver's digest); `expected`, when given, is what it
    /// must equal (the sender's). Returns the re-read digest when `verify`.
    @discardableResult
    public func commit(
        digest: DiskDigest?, expected: DiskDigest? = nil, verify: Bool = false, progress: ProgressMode = .none,
        cancellation: Cancellation = Cancellation(), whenVerified: () throws -> Void = {}
    ) throws -> DiskDigest? {
        try device.flush()
        if let expected, let digest, expected != digest {
            throw VerificationError(expected: expected, actual: digest, what: target.path)
        }
        var verified: DiskDigest?
        if verify {
            guard let digest else {
                throw DigestError("--verify needs the digest of what was written; none was computed")
            }
            let actual = try reread(leaf: digest.leaf, progress: progress, cancellation: cancellation)
            guard actual == digest else { throw VerificationError(expected: digest, actual: actual, what: target.path) }
            verified = actual
        }
        try whenVerified()
        try target.commit(verifyBlock0: verify)
        ownLock?.release()
        return verified
    }

    /// Removes what a failed or interrupted copy left (the partial file), never writes
    /// a held block 0. Safe after a failed `commit`.
    public func abandon() {
        target.abandon()
        ownLock?.release()
    }

    /// The digest of the target as the commit will leave it: the partial file or the
    /// device through its held first block, through the format's reader if any.
    private func reread(leaf: LeafHash, progress: ProgressMode, cancellation: Cancellation) throws
        -> DiskDigest
    {
        guard canVerify else {
            throw DiskError(.unsupported, target.path, operation: "verify", "--verify needs a target that can be read back")
        }
        let raw = (target.device as? FirstBlockHold)?.base ?? target.device
        // Read the disk, not the page cache the copy just filled (length 0: to the end).
        if let file = raw as? FileDevice { file.dropCache(at: 0, length: 0) }
        let disk: any BlockDevice =
            format == .raw ? target.device : try DiskImage.openSource(target.partialPath ?? target.path, format: format)
        // A block device may be larger than the source: compare the part we wrote.
        return try DiskChecksum.digest(
            of: disk, length: size, phase: "verify", progress: progress, leaf: leaf, cancellation: cancellation)
    }
}
