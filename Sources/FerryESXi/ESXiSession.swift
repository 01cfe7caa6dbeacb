import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// One login to one ESXi host: a shared HTTP client (a pool of TLS connections), the
/// credentials, and the `vmware_soap_session` cookie the host hands back.
///
/// The first request carries HTTP Basic; later ones the cookie. The cookie is dropped (and
/// Basic sent again) on a 401 and before it is `renewAfter` old: ESXi's sessions last about
/// 30 minutes and reading data does not renew them. The password stays in memory only.
public final class ESXiSession: Sendable {
    public struct Options: Sendable {
        /// Ranges in flight at once for one large read (ESXi throttles each connection).
        public var streams: Int = 4
        /// Bytes per ranged GET for bulk data.
        public var rangeSize: Int = 8 << 20
        /// Tries per request before a 503 or a cut connection is an error.
        public var attempts: Int = 6
        /// First back-off after a 503 (doubled per try).
        public var backoff: Duration = .milliseconds(200)
        /// A cookie older than this is not used: Basic logs in afresh.
        public var renewAfter: Duration = .seconds(25 * 60)
        public init() {}
    }

    public let location: ESXiLocation
    public let options: Options
    let client: HTTPClient
    private let authorization: String
    private let state = Mutex(State())

    private struct State {
        var cookie: String?
        var cookieTime: ContinuousClock.Instant?
        var logins = 0
        var busyReplies = 0
        /// Lowered on a 503, raised again on success: how many ranges may be in flight.
        var streams = 0
        var closed = false
    }

    /// Connects the client and checks the certificate under `trust` (a pin is verified before
    /// any credential leaves ferry). `warn` receives what a person must know (`--insecure`).
    public init(location: ESXiLocation, password: String, trust: ESXiTrust, options: Options = Options(),
                warn: @Sendable (String) -> Void = { _ in }) throws {
        self.location = location
        self.options = options
        let group = MultiThreadedEventLoopGroup.singleton
        if trust == .insecure {
            warn("warning: --insecure: the certificate of \(location.origin) is not checked; anyone on the path can read the password and the disk")
        }
        var config = HTTPClient.Configuration()
        config.tlsConfiguration = try ESXiTLS.configuration(trust, location: location, group: group)
        config.httpVersion = .http1Only  // one TCP connection per stream: ESXi throttles per connection
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, options.streams))
        // AHC retries a failed TLS handshake until the connect timeout: keep it short for a first contact.
        config.timeout = .init(connect: .seconds(8), read: .seconds(60))
        config.redirectConfiguration = .disallow
        config.decompression = .disabled
        client = HTTPClient(eventLoopGroup: group, configuration: config)
        authorization = "Basic " + Data("\(location.user):\(password)".utf8).base64EncodedString()
        state.withLock { $0.streams = max(1, options.streams) }
        trustForErrors = trust
    }

    private let trustForErrors: ESXiTrust

    /// Logins with Basic so far (a test sees the cookie reused, and renewed).
    public var basicLogins: Int { state.withLock { $0.logins } }
    /// 503 replies seen so far.
    public var busyReplies: Int { state.withLock { $0.busyReplies } }
    /// Ranges allowed in flight now (lowered by 503s).
    public var currentStreams: Int { state.withLock { $0.streams } }

    public func close() {
        let first = state.withLock { s in
            defer { s.closed = true }
            return !s.closed
        }
        if first { try? client.syncShutdown() }
    }

    // Not blocking: the last reference may be dropped on any thread, an event loop's included.
    deinit { if !state.withLock({ $0.closed }) { client.shutdown { _ in } } }

    /// The /folder URL of `path` in `datastore`.
    func folderURL(datastore: String, path: String) -> String {
        location.origin + "/folder/" + ESXiLocation.percentEncoded(path)
            + "?dcPath=" + ESXiLocation.percentEncoded(location.datacenter, keepSlash: false)
            + "&dsName=" + ESXiLocation.percentEncoded(datastore, keepSlash: false)
    }

    struct Reply: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// One request with the session's credentials, retried on 503 (with back-off and fewer
    /// streams) and on a broken connection; a 401 with the cookie logs in again with Basic,
    /// a 401 with Basic is a wrong password. Never call from an event-loop thread.
    func send(_ url: String, method: HTTPMethod = .GET, headers extra: [(String, String)] = [], body: String? = nil,
              maxBody: Int, subject: String, authenticate: Bool = true) throws -> Reply {
        let (status, headers, replyBody) = try exchange(extra: extra, maxBody: maxBody, subject: subject, authenticate: authenticate) { headers in
            let request = try HTTPClient.Request(url: url, method: method, headers: headers, body: body.map { .string($0) })
            let accumulator = ResponseAccumulator(request: request, maxBodySize: maxBody)
            let response = try client.execute(
                request: request, delegate: accumulator, eventLoop: .indifferent, deadline: .now() + .seconds(300)
            ).wait()
            return (response.status, response.headers, response.body ?? ByteBuffer())
        }
        return Reply(status: status, headers: headers, body: replyBody)
    }

    /// A reply cut after `received` bytes of its body had been written: the caller asks for
    /// the rest (`receive`'s caller resumes the range; nothing is fetched twice).
    struct Cut: Error {
        var received: Int
        var cause: any Error
    }

    /// A GET whose 206 body goes straight into `destination` (`ESXiBodySink`); retried like
    /// `send`, except that a reply cut after some of its body arrived throws `Cut`, so the
    /// caller resumes from there. Returns the status, the headers and the body bytes written.
    func receive(_ url: String, headers extra: [(String, String)], into destination: UnsafeMutableRawBufferPointer,
                 subject: String) throws -> (status: HTTPResponseStatus, headers: HTTPHeaders, received: Int) {
        let reply = try exchange(extra: extra, maxBody: destination.count, subject: subject) { headers in
            let request = try HTTPClient.Request(url: url, method: .GET, headers: headers)
            let sink = ESXiBodySink(destination)
            let head: ESXiBodySink.Head
            do {
                head = try client.execute(
                    request: request, delegate: sink, eventLoop: .indifferent, deadline: .now() + .seconds(300)
                ).wait()
            } catch {
                if sink.received > 0, !(error is ESXiBodySink.TooLong) { throw Cut(received: sink.received, cause: error) }
                throw error
            }
            return (head.status, head.headers, sink.received)
        }
        return (reply.status, reply.headers, reply.result)
    }

    /// A POST to the vSphere API (`/sdk`) with the headers given and no /folder credentials:
    /// the SOAP session has its own cookie (`VSphereClient`). Retried on 503 and on a broken
    /// connection like `send`; a 401 or a SOAP fault is the caller's to read.
    func post(_ url: String, body: String, headers extra: [(String, String)], maxBody: Int, subject: String) throws -> Reply {
        try send(url, method: .POST, headers: extra, body: body, maxBody: maxBody, subject: subject, authenticate: false)
    }

    /// The retry loop of `send`, `receive` and `post` around `perform`, which runs one request
    /// with the headers given (credentials added when `authenticate`) and returns its status,
    /// headers and result.
    private func exchange<R>(
        extra: [(String, String)], maxBody: Int, subject: String, authenticate: Bool = true,
        _ perform: (HTTPHeaders) throws -> (HTTPResponseStatus, HTTPHeaders, R)
    ) throws -> (status: HTTPResponseStatus, headers: HTTPHeaders, result: R) {
        var attempt = 0
        var forceBasic = false
        var lastError: (any Error)?
        while attempt < options.attempts {
            attempt += 1
            var headers = HTTPHeaders(extra)
            let cookie = forceBasic || !authenticate ? nil : currentCookie()
            if !authenticate {
                // The caller's headers carry the SOAP session's own cookie, if any.
            } else if let cookie {
                headers.add(name: "Cookie", value: "vmware_soap_session=\(cookie)")
            } else {
                headers.add(name: "Authorization", value: authorization)
                state.withLock { $0.logins += 1 }
            }
            let reply: (status: HTTPResponseStatus, headers: HTTPHeaders, result: R)
            do {
                reply = try perform(headers)
            } catch let cut as Cut {
                throw cut
            } catch is ResponseAccumulator.ResponseTooBigError, is ESXiBodySink.TooLong {
                throw ESXiError(.protocolViolation, subject, "the host sent a body of more than \(maxBody) bytes where at most that many were asked for (did it ignore Range?)")
            } catch let error as HTTPClientError where error == .invalidURL {
                throw ESXiError(.badName, subject, "cannot make a URL of the request for \(subject)")
            } catch let error as NIOSSLError {
                throw tlsFailure(error)
            } catch let error as BoringSSLError {
                throw tlsFailure(error)
            } catch {
                lastError = error
                if Self.isTLS(error) { throw tlsFailure(error) }
                try pause(attempt)
                continue
            }
            if authenticate { noteCookie(reply.headers) }
            switch reply.status.code {
            case 401 where authenticate:
                if cookie != nil {
                    forgetCookie()
                    forceBasic = true
                    attempt -= 1  // a renewal is not a failed try
                    continue
                }
                throw ESXiError(.authentication, location.origin, "the host refused user \"\(location.user)\" with this password (HTTP 401)")
            case 503:
                lastError = ESXiError(.network, subject, "the host answered 503 (busy) \(attempt) times")
                state.withLock { s in
                    s.busyReplies += 1
                    s.streams = max(1, s.streams / 2)
                }
                try pause(attempt)
                continue
            default:
                forceBasic = false
                state.withLock { s in s.streams = min(max(1, options.streams), s.streams + 1) }
                return reply
            }
        }
        if let error = lastError as? ESXiError { throw error }
        throw ESXiError(.network, subject, "gave up after \(options.attempts) tries: \(lastError.map { "\($0)" } ?? "no reply")")
    }

    private func tlsFailure(_ error: any Error) -> ESXiError {
        switch trustForErrors {
        case .systemCAs: return ESXiTLS.untrusted(location, group: MultiThreadedEventLoopGroup.singleton, cause: error)
        case .pinned: return ESXiError(.certificate, location.origin, "the host's certificate no longer matches the pin (TLS: \(error))")
        case .insecure: return ESXiError(.network, location.origin, "TLS failed: \(error)")
        }
    }

    /// A handshake failure that reaches here wrapped (the pool's own error types vary by
    /// version): recognised by BoringSSL's and NIOSSL's names for it.
    private static func isTLS(_ error: any Error) -> Bool {
        let text = String(describing: error)
        return text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("handshakeFailed")
    }

    private func pause(_ attempt: Int) throws {
        guard attempt < options.attempts else { return }
        let wait = options.backoff * (1 << min(attempt - 1, 6))
        Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) * 1e-18)
    }

    private func currentCookie() -> String? {
        state.withLock { s in
            guard let cookie = s.cookie, let time = s.cookieTime else { return nil }
            return ContinuousClock.now - time < options.renewAfter ? cookie : nil
        }
    }

    private func forgetCookie() { state.withLock { $0.cookie = nil } }

    private func noteCookie(_ headers: HTTPHeaders) {
        for line in headers["Set-Cookie"] {
            guard let pair = line.split(separator: ";").first else { continue }
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "vmware_soap_session" else { continue }
            let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: " \""))
            state.withLock { s in
                s.cookie = value
                s.cookieTime = .now
            }
        }
    }
}
