import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// Where a ranged GET's body goes: straight into the caller's buffer as it arrives (no copy
/// held whole in memory), counting what arrived, so that a reply cut half-way is resumed from
/// its last byte rather than fetched again whole.
///
/// Only a 206's body is written; any other reply's body is dropped (its status says what
/// went wrong, and an error page must never land in a disk buffer).
final class ESXiBodySink: HTTPClientResponseDelegate, @unchecked Sendable {
    // @unchecked: `destination` is written only by the event loop running this request, and
    // read by the caller only after the request's future completed; the counters sit in a Mutex.
    typealias Response = Head

    struct Head: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
    }

    /// More bytes arrived than the range asked for: the host ignored Range, or lied.
    struct TooLong: Error {}

    private let destination: UnsafeMutableRawBufferPointer
    private let state = Mutex<(head: Head?, received: Int)>((nil, 0))

    /// The caller keeps `destination` alive until the request has completed or failed.
    init(_ destination: UnsafeMutableRawBufferPointer) {
        self.destination = destination
    }

    /// Body bytes written so far (a 206's only).
    var received: Int { state.withLock { $0.received } }

    func didReceiveHead(task: HTTPClient.Task<Head>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLock { $0.head = Head(status: head.status, headers: head.headers) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Head>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let fits = state.withLock { s -> Bool in
            guard s.head?.status == .partialContent else { return true }
            let count = buffer.readableBytes
            guard s.received + count <= destination.count else { return false }
            buffer.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: destination[s.received..<(s.received + count)]).copyMemory(from: bytes)
            }
            s.received += count
            return true
        }
        return fits ? task.eventLoop.makeSucceededVoidFuture() : task.eventLoop.makeFailedFuture(TooLong())
    }

    func didReceiveError(task: HTTPClient.Task<Head>, _ error: any Error) {}

    func didFinishRequest(task: HTTPClient.Task<Head>) throws -> Head {
        guard let head = state.withLock({ $0.head }) else { throw HTTPClientError.remoteConnectionClosed }
        return head
    }
}
