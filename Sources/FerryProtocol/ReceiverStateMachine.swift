/// The receiver's side of a session as a pure state machine: it takes each message
/// and answers with what the handler must do. It owns every rule that depends on
/// order or on the disk size, so the handler never writes an extent it has not
/// approved.
///
/// Disks run side by side: each is described once, and from its `ready` on its
/// extents may interleave with any other disk's.
///
/// ```
///  awaitingHello ─hello─▶ running ─(every disk finished)─▶ done
///
///  per disk, while running:
///   (undescribed) ─disk─▶ opening ─opened─▶ receiving ─finish (all covered)─▶ finishing ─finished─▶ finished
/// ```
/// Anything about a disk not in the right state — an extent for a disk never
/// described or already finished, a second description, a finish before every byte
/// arrived — fails the session.
public struct ReceiverStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Send this message.
        case reply(Message)
        /// Open the target for this disk, then call `diskOpened(_:flags:)`.
        case openDisk(DiskDescription)
        /// Verify the block hashes, then write (or decompress and write).
        case write(DataExtent)
        case writeCompressed(CompressedExtent)
        /// Zero the range (nothing to do on a target known to be zero).
        case zero(ZeroExtent)
        /// Check the leaves against the segment digest re-read from the target, then count the segment as received.
        case same(SameSegment)
        /// Delta sync: re-read this segment of the target, keep its leaves, answer with `blockHashes`.
        case hashBlocks(BlockRequest)
        /// Delta sync: feed the kept leaves of these unchanged blocks to the digest.
        case sameBlocks(SameBlocks)
        /// Wait for writes in flight, flush, compare digests, send a result, call `diskFinished(_:)`.
        case finishDisk(Finish)
        /// Nothing to do now (other disks are still running, or a ping arrived).
        case awaitNextDisk
        /// Every disk is done.
        case done
        /// Send an error to the peer and close.
        case fail(ProtocolError)
        /// The peer reported an error: close.
        case peerFailed(ProtocolError)
    }

    enum Phase: Sendable {
        case awaitingHello
        case running
        case done
        case failed
    }

    enum DiskState: Sendable {
        case opening(DiskDescription)
        case receiving(DiskDescription, Coverage)
        case finishing(DiskDescription)
        case finished(DiskDescription)

        var description: DiskDescription {
            switch self {
            case .opening(let d), .receiving(let d, _), .finishing(let d), .finished(let d): d
            }
        }
    }

    public let diskCount: UInt32
    public let capabilities: Capabilities
    private(set) var phase: Phase = .awaitingHello
    /// What the sender offered in its hello.
    public private(set) var peerCapabilities: Capabilities = []
    /// Every disk described so far, by index.
    private(set) var disks: [UInt32: DiskState] = [:]

    public init(diskCount: Int, capabilities: Capabilities) {
        self.diskCount = UInt32(diskCount)
        self.capabilities = capabilities
    }

    /// True when both hellos offered the hash exchange (delta sync).
    public var hashExchange: Bool {
        capabilities.contains(.hashExchange) && peerCapabilities.contains(.hashExchange)
    }

    /// True when delta sync may use keyed XXH3 leaves: both hellos offered it with the hash exchange.
    public var keyedLeaves: Bool {
        hashExchange && capabilities.contains(.keyedXXH3) && peerCapabilities.contains(.keyedXXH3)
    }

    public var isDone: Bool {
        if case .done = phase { return true }
        return false
    }

    public mutating func received(_ message: Message) -> Action {
        if case .error(let e) = message {
            phase = .failed
            return .peerFailed(e.error)
        }
        if case .ping = message { return .awaitNextDisk }
        do {
            return try handle(message)
        } catch {
            phase = .failed
            return .fail(error)
        }
    }

    private mutating func handle(_ message: Message) throws(ProtocolError) -> Action {
        switch (phase, message) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.version == Hello.currentVersion else {
                throw ProtocolError(.version, "the sender speaks protocol version \(hello.version); this receiver speaks \(Hello.currentVersion)")
            }
            guard hello.role == .sender else { throw ProtocolError(.protocolViolation, "the peer is not a sender") }
            peerCapabilities = hello.capabilities
            phase = .running
            return .reply(.hello(Hello(capabilities: capabilities, role: .receiver)))

        case (.running, .disk(let disk)):
            guard disk.count == diskCount else {
                throw ProtocolError(.mismatch, "the sender has \(disk.count) disk(s) but this receiver was given \(diskCount) target(s)")
            }
            guard disk.index < diskCount else {
                throw ProtocolError(.protocolViolation, "disk \(disk.index) of \(diskCount) is not a valid disk number")
            }
            if let known = disks[disk.index]?.description {
                guard known.size == disk.size else {
                    throw ProtocolError(.outOfRange, "disk \(disk.index) changed size from \(known.size) to \(disk.size) bytes")
                }
                throw ProtocolError(.protocolViolation, "disk \(disk.index) was described twice")
            }
            disks[disk.index] = .opening(disk)
            return .openDisk(disk)

        case (.running, .data(let extent)):
            try accept(extent.disk, extent.offset, UInt64(extent.length))
            return .write(extent)

        case (.running, .compressed(let extent)):
            guard capabilities.contains(capability(of: extent.codec)) else {
                throw ProtocolError(.protocolViolation, "\(extent.codec) data was sent but not offered")
            }
            try accept(extent.disk, extent.offset, UInt64(extent.length))
            return .writeCompressed(extent)

        case (.running, .zero(let extent)):
            try accept(extent.disk, extent.offset, extent.length)
            return .zero(extent)

        case (.running, .same(let segment)):
            try accept(segment.disk, segment.offset, UInt64(segment.length))
            return .same(segment)

        case (.running, .blockRequest(let request)):
            guard hashExchange else { throw ProtocolError(.protocolViolation, "block hashes asked for, but the hash exchange was not agreed") }
            guard case .receiving = disks[request.disk] else {
                throw ProtocolError(.protocolViolation, "block hashes of disk \(request.disk) asked for while it is \(name(of: request.disk))")
            }
            return .hashBlocks(request)

        case (.running, .sameBlocks(let same)):
            guard hashExchange else { throw ProtocolError(.protocolViolation, "unchanged blocks claimed, but the hash exchange was not agreed") }
            try accept(same.disk, same.offset, UInt64(same.length))
            return .sameBlocks(same)

        case (.running, .finish(let finish)):
            guard case .receiving(let disk, let coverage) = disks[finish.disk] else {
                throw ProtocolError(.protocolViolation, "finish for disk \(finish.disk) while it is \(name(of: finish.disk))")
            }
            guard coverage.covers(size: disk.size) else {
                throw ProtocolError(
                    .verification, "the sender finished disk \(disk.index) after sending \(coverage.totalBytes) of its \(disk.size) bytes")
            }
            disks[finish.disk] = .finishing(disk)
            return .finishDisk(finish)

        default:
            throw ProtocolError(.protocolViolation, "unexpected \(message.kind) message while \(stateName)")
        }
    }

    /// The handler opened the target of disk `index`.
    public mutating func diskOpened(_ index: UInt32, flags: UInt32, leafKey: [UInt8]? = nil) -> Action {
        guard case .opening(let disk) = disks[index] else {
            phase = .failed
            return .fail(ProtocolError(.protocolViolation, "internal: disk \(index) opened while \(name(of: index))"))
        }
        disks[index] = .receiving(disk, Coverage())
        if leafKey != nil, !keyedLeaves {
            phase = .failed
            return .fail(ProtocolError(.protocolViolation, "internal: disk \(index) keyed, but keyed block hashes were not agreed"))
        }
        return .reply(.ready(DiskReady(index: index, flags: flags, leafKey: leafKey)))
    }

    /// The handler finished disk `index` (result sent).
    public mutating func diskFinished(_ index: UInt32) -> Action {
        guard case .finishing(let disk) = disks[index] else {
            phase = .failed
            return .fail(ProtocolError(.protocolViolation, "internal: disk \(index) finished while \(name(of: index))"))
        }
        disks[index] = .finished(disk)
        let finished = disks.values.filter { if case .finished = $0 { true } else { false } }.count
        guard finished == Int(diskCount) else { return .awaitNextDisk }
        phase = .done
        return .done
    }

    /// Checks an extent of `index` against its disk's size, block alignment and
    /// coverage, and records it.
    private mutating func accept(_ index: UInt32, _ offset: UInt64, _ length: UInt64) throws(ProtocolError) {
        guard case .receiving(let disk, var coverage) = disks[index] else {
            throw ProtocolError(.protocolViolation, "extent for disk \(index) while it is \(name(of: index))")
        }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= disk.size else {
            throw ProtocolError(
                .outOfRange, "extent \(offset)+\(length) runs past the end of disk \(disk.index) (\(disk.size) bytes)")
        }
        // Extents are whole blocks, except the one that ends the disk.
        guard end == disk.size || end % UInt64(WireLimits.blockSize) == 0 else {
            throw ProtocolError(.outOfRange, "extent \(offset)+\(length) ends inside a 64 KiB block")
        }
        try coverage.insert(offset..<end)
        disks[index] = .receiving(disk, coverage)
    }

    private func capability(of codec: CompressedExtent.Codec) -> Capabilities {
        switch codec {
        case .zstd: .zstd
        case .lz4: .lz4
        case .gzip: .gzip
        }
    }

    private func name(of index: UInt32) -> String {
        switch disks[index] {
        case nil: "not described"
        case .opening: "being opened"
        case .receiving: "being received"
        case .finishing: "finishing"
        case .finished: "finished already"
        }
    }

    var stateName: String {
        switch phase {
        case .awaitingHello: "waiting for hello"
        case .running: "receiving \(disks.count) of \(diskCount) disk(s)"
        case .done: "done"
        case .failed: "failed"
        }
    }
}
