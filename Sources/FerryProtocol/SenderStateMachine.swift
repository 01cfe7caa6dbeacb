/// The sender's side of a session as a pure state machine. Every disk is described
/// up front and then runs on its own, so the extents of several disks interleave on
/// the one connection (each extent names its disk):
///
/// ```
///  idle ─start─▶ awaitingHello ─hello─▶ running ─(every disk verified)─▶ done
///
///  per disk, while running:
///   awaitingReady ─ready─────────────────────────────▶ sending ─allSent─▶ awaitingResult ─result─▶ verified
///         └──────ready+resume─▶ collectingSegments ─segments(final)─▲
/// ```
/// A message about a disk that is not in the state it implies (a second `ready`, a
/// `result` before `finish`, a disk index past the count) fails the session.
public struct SenderStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case send(Message)
        /// Send the description of every disk (the handler knows the disks).
        case describeAll
        /// Start streaming disk `i`'s extents.
        case startSending(UInt32, targetIsZero: Bool)
        /// Journaled segments the receiver holds; when `start`, begin streaming disk `i` (resuming).
        case resumeSegments(SegmentList, start: Bool)
        /// The receiver's block hashes of a segment this sender asked for (delta sync).
        case blockHashes(BlockHashList)
        /// The receiver acknowledged progress.
        case progress(Ack)
        /// Disk `i` is verified and durable on the receiver; others are still running.
        case diskVerified(UInt32)
        /// Every disk is verified: close and exit 0.
        case done
        case fail(ProtocolError)
        case peerFailed(ProtocolError)
        /// Nothing to do yet.
        case ignoreForNow
    }

    enum Phase: Sendable, Equatable {
        case idle
        case awaitingHello
        case running
        case done
        case failed
    }

    enum DiskState: Sendable, Equatable {
        case awaitingReady
        case collectingSegments
        case sending
        case awaitingResult([UInt8])
        case verified
    }

    public let diskCount: UInt32
    public let capabilities: Capabilities
    private(set) var phase: Phase = .idle
    private(set) var disks: [DiskState]
    /// What the receiver offered in its hello.
    public private(set) var peerCapabilities: Capabilities = []
    /// Disk sizes, when known: segment lists naming a segment past the end are refused.
    public let diskSizes: [UInt64]
    /// Disks whose receiver holds an earlier copy (`ready` with the delta flag).
    public private(set) var deltaDisks: Set<UInt32> = []
    /// Disks whose block hashes are keyed XXH3 (`ready`'s `keyedLeaves` flag): their keys.
    public private(set) var leafKeys: [UInt32: [UInt8]] = [:]
    /// Segments of delta disks whose block hashes were asked for and not yet received:
    /// the exact range the answer must describe.
    private(set) var requested: [UInt32: [UInt64: Range<UInt64>]] = [:]
    /// Segment-list entries received per disk (a flood past the disk's segment count is refused).
    private var listed: [UInt32: Int] = [:]
    /// Delta disks being sent whose final segment list has not arrived yet.
    private(set) var listing: Set<UInt32> = []

    public init(diskCount: Int, capabilities: Capabilities, diskSizes: [UInt64] = []) {
        self.diskCount = UInt32(diskCount)
        self.capabilities = capabilities
        self.diskSizes = diskSizes
        disks = Array(repeating: .awaitingReady, count: diskCount)
    }

    /// True when both hellos offered the hash exchange (delta sync).
    public var hashExchange: Bool {
        capabilities.contains(.hashExchange) && peerCapabilities.contains(.hashExchange)
    }

    /// True when delta sync may use keyed XXH3 leaves: both hellos offered it with the hash exchange.
    public var keyedLeaves: Bool {
        hashExchange && capabilities.contains(.keyedXXH3) && peerCapabilities.contains(.keyedXXH3)
    }

    public mutating func start() -> Action {
        phase = .awaitingHello
        return .send(.hello(Hello(capabilities: capabilities, role: .sender)))
    }

    public mutating func received(_ message: Message) -> Action {
        switch (phase, message) {
        case (_, .error(let e)):
            phase = .failed
            return .peerFailed(e.error)
        case (_, .ping):
            return .ignoreForNow
        case (.awaitingHello, .hello(let hello)):
            guard hello.version == Hello.currentVersion else {
                return fail(.version, "the receiver speaks protocol version \(hello.version); this sender speaks \(Hello.currentVersion)")
            }
            guard hello.role == .receiver else { return fail(.protocolViolation, "the peer is not a receiver") }
            peerCapabilities = hello.capabilities
            phase = .running
            return .describeAll
        case (.running, .ready(let ready)):
            guard state(of: ready.index) == .awaitingReady else { return unexpected(message, disk: ready.index) }
            let i = Int(ready.index)
            if ready.flags & DiskReady.delta != 0 {
                guard hashExchange else {
                    return fail(.protocolViolation, "disk \(ready.index): delta offered, but the hash exchange was not agreed")
                }
                deltaDisks.insert(ready.index)
            }
            if let key = ready.leafKey {
                guard keyedLeaves else {
                    return fail(.protocolViolation, "disk \(ready.index): a leaf key sent, but keyed block hashes were not agreed")
                }
                leafKeys[ready.index] = key
            }
            if ready.flags & (DiskReady.resume | DiskReady.delta) != 0 {
                disks[i] = .collectingSegments
                return .ignoreForNow
            }
            disks[i] = .sending
            return .startSending(ready.index, targetIsZero: ready.flags & DiskReady.targetIsZero != 0)
        case (.running, .segments(let list)):
            // A delta disk's lists stream in while the receiver hashes its target: the first
            // starts the disk, the others arrive while it is sent, until the final one.
            let streaming = deltaDisks.contains(list.disk) && state(of: list.disk) == .sending && listing.contains(list.disk)
            guard state(of: list.disk) == .collectingSegments || streaming else { return unexpected(message, disk: list.disk) }
            if let size = diskSizes.indices.contains(Int(list.disk)) ? diskSizes[Int(list.disk)] : nil {
                let segments = (size + UInt64(list.segmentSize) - 1) / UInt64(list.segmentSize)
                if let past = list.entries.first(where: { $0.index >= segments }) {
                    return fail(.outOfRange, "disk \(list.disk): segment \(past.index) listed, past the end of the disk (\(segments) segments)")
                }
                let total = listed[list.disk, default: 0] + list.entries.count
                guard total <= Int(segments) else {
                    return fail(.protocolViolation, "disk \(list.disk): \(total) segments listed for a disk of \(segments)")
                }
                listed[list.disk] = total
            }
            if deltaDisks.contains(list.disk) {
                let start = !streaming
                disks[Int(list.disk)] = .sending
                if list.isFinal { listing.remove(list.disk) } else { listing.insert(list.disk) }
                return .resumeSegments(list, start: start)
            }
            if list.isFinal { disks[Int(list.disk)] = .sending }
            return .resumeSegments(list, start: list.isFinal)
        case (.running, .blockHashes(let hashes)):
            guard state(of: hashes.disk) == .sending,
                let range = requested[hashes.disk]?.first(where: { $0.value.lowerBound == hashes.offset })
            else {
                return fail(.protocolViolation, "block hashes for disk \(hashes.disk) at \(hashes.offset), which this sender did not ask for")
            }
            guard range.value.upperBound - range.value.lowerBound == UInt64(hashes.length) else {
                return fail(.outOfRange, "block hashes for disk \(hashes.disk) at \(hashes.offset): \(hashes.length) bytes, the segment has \(range.value.count)")
            }
            requested[hashes.disk]?[range.key] = nil
            return .blockHashes(hashes)
        case (.running, .ack(let ack)):
            switch state(of: ack.disk) {
            case .sending, .awaitingResult: return .progress(ack)
            default: return unexpected(message, disk: ack.disk)
            }
        case (.running, .result(let result)):
            guard case .awaitingResult(let ours) = state(of: result.disk) else { return unexpected(message, disk: result.disk) }
            guard result.status == .verified, result.digest == ours else {
                return fail(.verification, "disk \(result.disk): the receiver's digest does not match the sender's")
            }
            disks[Int(result.disk)] = .verified
            guard disks.allSatisfy({ $0 == .verified }) else { return .diskVerified(result.disk) }
            phase = .done
            return .done
        default:
            return fail(.protocolViolation, "unexpected \(message.kind) message from the receiver")
        }
    }

    /// The handler has sent every extent of disk `disk`.
    public mutating func allSent(disk: UInt32, digest: [UInt8]) -> Action {
        guard phase == .running, state(of: disk) == .sending, !listing.contains(disk) else {
            return fail(.protocolViolation, "internal: disk \(disk) all sent while not sending it")
        }
        disks[Int(disk)] = .awaitingResult(digest)
        return .send(.finish(Finish(disk: disk, digest: digest)))
    }

    /// Delta sync's fine pass: asks for the receiver's block hashes of segment `segment`
    /// of disk `disk`, which covers `range`. At most `DeltaRules.maxOutstandingRequests`
    /// are outstanding per disk (the handler keeps far fewer: one per worker).
    public mutating func requestBlocks(disk: UInt32, segment: UInt64, range: Range<UInt64>) -> Action {
        guard phase == .running, state(of: disk) == .sending, deltaDisks.contains(disk) else {
            return fail(.protocolViolation, "internal: block hashes of disk \(disk) asked for while it is not a delta disk being sent")
        }
        var pending = requested[disk, default: [:]]
        guard pending[segment] == nil, pending.count < DeltaRules.maxOutstandingRequests else {
            return fail(.protocolViolation, "internal: block hashes of disk \(disk) segment \(segment) asked for twice or too many at once")
        }
        pending[segment] = range
        requested[disk] = pending
        return .send(.blockRequest(BlockRequest(disk: disk, segment: segment)))
    }

    /// The state of disk `index`, or nil for an index past the count.
    private func state(of index: UInt32) -> DiskState? {
        index < diskCount ? disks[Int(index)] : nil
    }

    private mutating func unexpected(_ message: Message, disk: UInt32) -> Action {
        let what = state(of: disk).map { "while disk \(disk) is \($0.name)" } ?? "for disk \(disk), which was never described"
        return fail(.protocolViolation, "unexpected \(message.kind) message from the receiver \(what)")
    }

    private mutating func fail(_ code: ProtocolError.Code, _ detail: String) -> Action {
        phase = .failed
        return .fail(ProtocolError(code, detail))
    }
}

extension SenderStateMachine.DiskState {
    var name: String {
        switch self {
        case .awaitingReady: "waiting for ready"
        case .collectingSegments: "collecting journaled segments"
        case .sending: "being sent"
        case .awaitingResult: "waiting for its result"
        case .verified: "verified already"
        }
    }
}
