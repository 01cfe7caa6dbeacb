/// The sender's side of a session as a pure state machine.
///
/// ```
///  idle ─start─▶ awaitingHello ─hello─▶ awaitingReady(i) ─ready─▶ sending(i) ─allSent─▶ awaitingResult(i)
///                                            ▲                                              │
///                                            └────────── result verified, i+1 < count ◀─────┘
/// ```
public struct SenderStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case send(Message)
        /// Send the description of disk `i` (the handler knows the disks).
        case describe(UInt32)
        /// Start streaming disk `i`'s extents.
        case startSending(UInt32, targetIsZero: Bool)
        /// Journaled segments the receiver holds; when `start`, begin streaming disk `i` (resuming).
        case resumeSegments(SegmentList, start: Bool)
        /// The receiver acknowledged progress.
        case progress(Ack)
        /// Disk `i` is verified and durable on the receiver.
        case diskVerified(UInt32)
        /// Every disk is verified: close and exit 0.
        case done
        case fail(ProtocolError)
        case peerFailed(ProtocolError)
        /// Nothing to do yet.
        case ignoreForNow
    }

    enum State: Sendable, Equatable {
        case idle
        case awaitingHello
        case awaitingReady(UInt32)
        case collectingSegments(UInt32)
        case sending(UInt32)
        case awaitingResult(UInt32, [UInt8])
        case done
        case failed
    }

    public let diskCount: UInt32
    public let capabilities: Capabilities
    private(set) var state: State = .idle
    /// What the receiver offered in its hello.
    public private(set) var peerCapabilities: Capabilities = []

    public init(diskCount: Int, capabilities: Capabilities) {
        self.diskCount = UInt32(diskCount)
        self.capabilities = capabilities
    }

    public mutating func start() -> Action {
        state = .awaitingHello
        return .send(.hello(Hello(capabilities: capabilities, role: .sender)))
    }

    public mutating func received(_ message: Message) -> Action {
        switch (state, message) {
        case (_, .error(let e)):
            state = .failed
            return .peerFailed(e.error)
        case (_, .ping):
            return .ignoreForNow
        case (.awaitingHello, .hello(let hello)):
            guard hello.version == Hello.currentVersion else {
                return fail(.version, "the receiver speaks protocol version \(hello.version); this sender speaks \(Hello.currentVersion)")
            }
            guard hello.role == .receiver else { return fail(.protocolViolation, "the peer is not a receiver") }
            peerCapabilities = hello.capabilities
            state = .awaitingReady(0)
            return .describe(0)
        case (.awaitingReady(let i), .ready(let ready)) where ready.index == i && ready.flags & DiskReady.resume != 0:
            state = .collectingSegments(i)
            return .ignoreForNow
        case (.collectingSegments(let i), .segments(let list)) where list.disk == i:
            if list.isFinal { state = .sending(i) }
            return .resumeSegments(list, start: list.isFinal)
        case (.awaitingReady(let i), .ready(let ready)) where ready.index == i:
            state = .sending(i)
            return .startSending(i, targetIsZero: ready.flags & DiskReady.targetIsZero != 0)
        case (.sending(let i), .ack(let ack)) where ack.disk == i,
            (.awaitingResult(let i, _), .ack(let ack)) where ack.disk == i:
            return .progress(ack)
        case (.awaitingResult(let i, let ours), .result(let result)) where result.disk == i:
            guard result.status == .verified, result.digest == ours else {
                return fail(.verification, "disk \(i): the receiver's digest does not match the sender's")
            }
            if i + 1 < diskCount {
                state = .awaitingReady(i + 1)
                return .describe(i + 1)
            }
            state = .done
            return .done
        default:
            return fail(.protocolViolation, "unexpected \(message.kind) message from the receiver")
        }
    }

    /// The handler has sent every extent of the current disk.
    public mutating func allSent(digest: [UInt8]) -> Action {
        guard case .sending(let i) = state else {
            return fail(.protocolViolation, "internal: all sent while not sending")
        }
        state = .awaitingResult(i, digest)
        return .send(.finish(Finish(disk: i, digest: digest)))
    }

    private mutating func fail(_ code: ProtocolError.Code, _ detail: String) -> Action {
        state = .failed
        return .fail(ProtocolError(code, detail))
    }
}
