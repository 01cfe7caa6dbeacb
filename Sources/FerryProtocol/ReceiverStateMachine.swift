/// The receiver's side of a session as a pure state machine: it takes each message
/// and answers with what the handler must do. It owns every rule that depends on
/// order or on the disk size, so the handler never writes an extent it has not
/// approved.
///
/// ```
///  awaitingHello ─hello─▶ awaitingDisk(i) ─disk─▶ opening ─opened─▶ receiving ─finish─▶ finishing
///        ▲                       │                                                     │
///        └───────────────────────┴────────────────── diskFinished (i+1 < count) ◀───────┘
/// ```
public struct ReceiverStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Send this message.
        case reply(Message)
        /// Open the target for this disk, then call `diskOpened(flags:)`.
        case openDisk(DiskDescription)
        /// Verify the block hashes, then write (or decompress and write).
        case write(DataExtent)
        case writeCompressed(CompressedExtent)
        /// Zero the range (nothing to do on a target known to be zero).
        case zero(ZeroExtent)
        /// Check the leaves against the journaled segment digest, then count the segment as received.
        case same(SameSegment)
        /// Wait for writes in flight, flush, compare digests, send a result, call `diskFinished()`.
        case finishDisk(Finish)
        /// Nothing to do now (the next disk has yet to be described, or a ping arrived).
        case awaitNextDisk
        /// Every disk is done.
        case done
        /// Send an error to the peer and close.
        case fail(ProtocolError)
        /// The peer reported an error: close.
        case peerFailed(ProtocolError)
    }

    enum State: Sendable {
        case awaitingHello
        case awaitingDisk(UInt32)
        case opening(DiskDescription)
        case receiving(DiskDescription, Coverage)
        case finishing(DiskDescription)
        case done
        case failed
    }

    public let diskCount: UInt32
    public let capabilities: Capabilities
    private(set) var state: State = .awaitingHello
    /// What the sender offered in its hello.
    public private(set) var peerCapabilities: Capabilities = []
    /// Sizes of disks already described, so a size that changes is caught.
    private var sizes: [UInt32: UInt64] = [:]

    public init(diskCount: Int, capabilities: Capabilities) {
        self.diskCount = UInt32(diskCount)
        self.capabilities = capabilities
    }

    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    public mutating func received(_ message: Message) -> Action {
        if case .error(let e) = message {
            state = .failed
            return .peerFailed(e.error)
        }
        if case .ping = message { return .awaitNextDisk }
        do {
            return try handle(message)
        } catch {
            state = .failed
            return .fail(error)
        }
    }

    private mutating func handle(_ message: Message) throws(ProtocolError) -> Action {
        switch (state, message) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.version == Hello.currentVersion else {
                throw ProtocolError(.version, "the sender speaks protocol version \(hello.version); this receiver speaks \(Hello.currentVersion)")
            }
            guard hello.role == .sender else { throw ProtocolError(.protocolViolation, "the peer is not a sender") }
            peerCapabilities = hello.capabilities
            state = .awaitingDisk(0)
            return .reply(.hello(Hello(capabilities: capabilities, role: .receiver)))

        case (.awaitingDisk(let expected), .disk(let disk)):
            guard disk.count == diskCount else {
                throw ProtocolError(.mismatch, "the sender has \(disk.count) disk(s) but this receiver was given \(diskCount) target(s)")
            }
            guard disk.index == expected else {
                throw ProtocolError(.protocolViolation, "expected disk \(expected), got disk \(disk.index)")
            }
            try checkSize(disk)
            state = .opening(disk)
            return .openDisk(disk)

        case (.receiving(let disk, var coverage), .data(let extent)):
            try checkExtent(disk, extent.disk, extent.offset, UInt64(extent.length), coverage)
            try coverage.insert(extent.offset..<extent.offset + UInt64(extent.length))
            state = .receiving(disk, coverage)
            return .write(extent)

        case (.receiving(let disk, var coverage), .compressed(let extent)):
            guard capabilities.contains(capability(of: extent.codec)) else {
                throw ProtocolError(.protocolViolation, "\(extent.codec) data was sent but not offered")
            }
            try checkExtent(disk, extent.disk, extent.offset, UInt64(extent.length), coverage)
            try coverage.insert(extent.offset..<extent.offset + UInt64(extent.length))
            state = .receiving(disk, coverage)
            return .writeCompressed(extent)

        case (.receiving(let disk, var coverage), .zero(let extent)):
            try checkExtent(disk, extent.disk, extent.offset, extent.length, coverage)
            try coverage.insert(extent.offset..<extent.offset + extent.length)
            state = .receiving(disk, coverage)
            return .zero(extent)

        case (.receiving(let disk, var coverage), .same(let segment)):
            try checkExtent(disk, segment.disk, segment.offset, UInt64(segment.length), coverage)
            try coverage.insert(segment.offset..<segment.offset + UInt64(segment.length))
            state = .receiving(disk, coverage)
            return .same(segment)

        case (.receiving(let disk, let coverage), .finish(let finish)):
            guard finish.disk == disk.index else {
                throw ProtocolError(.protocolViolation, "finish for disk \(finish.disk) while receiving disk \(disk.index)")
            }
            guard coverage.covers(size: disk.size) else {
                throw ProtocolError(
                    .verification, "the sender finished disk \(disk.index) after sending \(coverage.totalBytes) of its \(disk.size) bytes")
            }
            state = .finishing(disk)
            return .finishDisk(finish)

        case (_, .disk(let disk)) where sizes[disk.index] != nil:
            try checkSize(disk)
            throw ProtocolError(.protocolViolation, "disk \(disk.index) was described twice")

        default:
            throw ProtocolError(.protocolViolation, "unexpected \(message.kind) message while \(stateName)")
        }
    }

    /// The handler opened the target of the disk being set up.
    public mutating func diskOpened(flags: UInt32) -> Action {
        guard case .opening(let disk) = state else {
            state = .failed
            return .fail(ProtocolError(.protocolViolation, "internal: disk opened while \(stateName)"))
        }
        state = .receiving(disk, Coverage())
        return .reply(.ready(DiskReady(index: disk.index, flags: flags)))
    }

    /// The handler finished the disk (result sent).
    public mutating func diskFinished() -> Action {
        guard case .finishing(let disk) = state else {
            state = .failed
            return .fail(ProtocolError(.protocolViolation, "internal: disk finished while \(stateName)"))
        }
        if disk.index + 1 < diskCount {
            state = .awaitingDisk(disk.index + 1)
            return .awaitNextDisk
        }
        state = .done
        return .done
    }

    private mutating func checkSize(_ disk: DiskDescription) throws(ProtocolError) {
        if let known = sizes[disk.index], known != disk.size {
            throw ProtocolError(.outOfRange, "disk \(disk.index) changed size from \(known) to \(disk.size) bytes")
        }
        sizes[disk.index] = disk.size
    }

    private func checkExtent(
        _ disk: DiskDescription, _ index: UInt32, _ offset: UInt64, _ length: UInt64, _ coverage: Coverage
    ) throws(ProtocolError) {
        guard index == disk.index else {
            throw ProtocolError(.protocolViolation, "extent for disk \(index) while receiving disk \(disk.index)")
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
    }

    private func capability(of codec: CompressedExtent.Codec) -> Capabilities {
        switch codec {
        case .zstd: .zstd
        case .lz4: .lz4
        case .gzip: .gzip
        }
    }

    var stateName: String {
        switch state {
        case .awaitingHello: "waiting for hello"
        case .awaitingDisk(let i): "waiting for disk \(i)"
        case .opening(let d): "opening disk \(d.index)"
        case .receiving(let d, _): "receiving disk \(d.index)"
        case .finishing(let d): "finishing disk \(d.index)"
        case .done: "done"
        case .failed: "failed"
        }
    }
}
