public import FerryDisk
import NIOCore
import NIOPosix
import Synchronization

/// An NBD export as a `BlockDevice` (the client side of proto.md): one connection, fixed newstyle
/// negotiation (`NBDClientHandshake`), structured replies and `base:allocation` when the server
/// agrees, and any number of requests in flight — every caller's request is sent at once and
/// waited for on the caller's thread, and large reads are cut into pieces sent together.
/// Thread-safe for concurrent calls, as `BlockDevice` asks. `nbds://` URIs start TLS first
/// (`NBD_OPT_STARTTLS`, `NBDClientTLS`) and refuse a server that will not.
public final class NBDClient: BlockDevice {
    public let name: String
    public let size: UInt64
    public let logicalSectorSize = 512
    public let capabilities: DiskCapabilities
    public let negotiated: NBDNegotiated
    /// The largest payload of one request: the server's maximum, capped at `NBD.Limit.payload`.
    public let maximumRequest: UInt32

    private let channel: any Channel
    private let handler: NIOLoopBound<NBDClientHandler>
    private let closed = Mutex(false)

    /// How long the connection and the handshake may take before ferry gives up (a hang guard).
    static let handshakeTimeout = TimeAmount.seconds(60)

    /// Connects to `uri` and negotiates; `writable` asks for a writable export (fails when the server says read-only).
    public init(uri: NBDURI, writable: Bool = false) throws {
        let name = uri.description
        self.name = name
        // nbds://: the certificates are read before connecting, so a missing file costs no connection.
        var host: String?
        if case .tcp(let h, _) = uri.endpoint { host = h }
        let tls = try uri.tls.map { try $0.upgrade(tcpHost: host, peer: name) }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (handler, ready) = try loop.submit {
            let ready = loop.makePromise(of: NBDNegotiated.self)
            let handler = NBDClientHandler(exportName: uri.exportName, name: name, ready: ready, tls: tls)
            return (NIOLoopBound(handler, eventLoop: loop), ready.futureResult)
        }.wait()
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(Self.handshakeTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
            }
        let channel: any Channel
        do {
            switch uri.endpoint {
            case .unix(let path):
                channel = try bootstrap.connect(unixDomainSocketPath: path).wait()
            case .tcp(let host, let port):
                channel = try bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1).connect(host: host, port: port).wait()
            }
        } catch {
            throw NBDError(.connection, name, "cannot connect: \(error)")
        }
        let guardTask = loop.scheduleTask(in: Self.handshakeTimeout) {
            channel.pipeline.fireErrorCaught(NBDError(.connection, name, "no handshake within \(Self.handshakeTimeout.nanoseconds / 1_000_000_000) s"))
        }
        let agreed: NBDNegotiated
        do {
            agreed = try ready.wait()
            guardTask.cancel()
        } catch {
            guardTask.cancel()
            try? channel.close().wait()
            throw error
        }
        if writable, agreed.isReadOnly {
            try? channel.close().wait()
            throw DiskError(.readOnly, name, operation: "open", "the NBD export is read-only (the server offers it with NBD_FLAG_READ_ONLY); nothing was written")
        }
        self.channel = channel
        self.handler = handler
        negotiated = agreed
        size = agreed.size
        maximumRequest = min(agreed.blockSize?.maximum ?? NBD.Limit.payload, NBD.Limit.payload)
        var caps: DiskCapabilities = [.randomAccess]
        if agreed.baseAllocation != nil { caps.insert(.extents) }
        if writable { caps.insert(.writable) }
        capabilities = caps
    }

    public convenience init(_ uri: String, writable: Bool = false) throws {
        try self.init(uri: try NBDURI(parsing: uri), writable: writable)
    }

    private func submit(_ request: NBDRequest, payload: ByteBuffer? = nil, target: ReadTarget? = nil) -> EventLoopFuture<NBDOutcome> {
        let handler = self.handler
        let loop = channel.eventLoop
        return loop.flatSubmit { handler.value.send(request, payload: payload, target: target, on: loop) }
    }

    private func checkOpen(_ operation: String) throws {
        if closed.withLock({ $0 }) { throw DiskError(.closed, name, operation: operation, "the NBD connection is closed") }
    }

    /// `[offset, offset+length)` cut into requests of at most `piece` bytes.
    private func pieces(_ offset: UInt64, _ length: UInt64, _ piece: UInt32) -> [(UInt64, UInt32)] {
        stride(from: UInt64(0), to: length, by: Int(piece)).map { at in (offset + at, UInt32(min(UInt64(piece), length - at))) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkOpen("read")
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        let futures = pieces(offset, UInt64(buffer.count), maximumRequest).map { at, count in
            let start = Int(at - offset)
            let target = ReadTarget(buffer: UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + Int(count)]))
            return submit(NBDRequest(.read, cookie: 0, offset: at, length: count), target: target)
        }
        try waitAll(futures)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try checkWritable("write")
        try checkRange(offset, UInt64(buffer.count), operation: "write")
        let futures = pieces(offset, UInt64(buffer.count), maximumRequest).map { at, count in
            let start = Int(at - offset)
            let payload = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: buffer[start..<start + Int(count)]))
            return submit(NBDRequest(.write, cookie: 0, offset: at, length: count), payload: payload)
        }
        try waitAll(futures)
    }

    /// WRITE_ZEROES (NO_HOLE unless `mayDiscard`) when the server offers it, else zero bytes.
    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try checkWritable("zero")
        try checkRange(offset, length, operation: "zero")
        guard negotiated.has(NBD.TransmissionFlag.sendWriteZeroes) else { return try writeZeroBytes(self, at: offset, length: length) }
        let flags = mayDiscard ? 0 : NBD.CommandFlag.noHole
        if negotiated.extendedHeaders, length > 0 {  // a 64-bit length: one request
            return try waitAll([submit(NBDRequest(flags: flags, type: NBD.Command.writeZeroes.rawValue, cookie: 0, offset: offset, length: length))])
        }
        try waitAll(pieces(offset, length, 1 << 30).map { at, count in
            submit(NBDRequest(.writeZeroes, flags: flags, cookie: 0, offset: at, length: count))
        })
    }

    /// NBD_CMD_TRIM: the server may deallocate the range; its contents are undefined after.
    /// Does nothing when the server does not offer TRIM (it is advice).
    public func trim(at offset: UInt64, length: UInt64) throws {
        try checkWritable("trim")
        try checkRange(offset, length, operation: "trim")
        guard negotiated.has(NBD.TransmissionFlag.sendTrim) else { return }
        if negotiated.extendedHeaders, length > 0 {  // a 64-bit length: one request
            return try waitAll([submit(NBDRequest(flags: 0, type: NBD.Command.trim.rawValue, cookie: 0, offset: offset, length: length))])
        }
        try waitAll(pieces(offset, length, 1 << 30).map { at, count in submit(NBDRequest(.trim, cookie: 0, offset: at, length: count)) })
    }

    public func flush() throws {
        try checkOpen("flush")
        guard capabilities.contains(.writable), negotiated.has(NBD.TransmissionFlag.sendFlush) else { return }
        try waitAll([submit(NBDRequest(.flush, cookie: 0))])
    }

    /// `base:allocation` as extents: HOLE|ZERO is a hole, ZERO alone zero, anything else data
    /// (HOLE without ZERO reads as anything: it must be read). Without the context, all data.
    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        try checkOpen("extents")
        try checkRange(offset, length, operation: "extents")
        guard negotiated.baseAllocation != nil else { return length == 0 ? [] : [Extent(offset: offset, length: length, kind: .data)] }
        var out: [Extent] = []
        var at = offset
        let end = offset + length
        while at < end {
            // Compact lengths are u32: ask at most 2 GiB at once (extended: all that is left),
            // then go on from what came back.
            let ask = negotiated.extendedHeaders ? end - at : min(end - at, 1 << 31)
            let outcome = try submit(NBDRequest(flags: 0, type: NBD.Command.blockStatus.rawValue, cookie: 0, offset: at, length: ask)).wait()
            guard case .descriptors(let descriptors) = outcome else { throw NBDError(.protocolViolation, name, "no block status") }
            for d in descriptors where at < end {
                let n = min(UInt64(d.length), end - at)
                let both = NBD.StateFlag.hole | NBD.StateFlag.zero
                let kind: ExtentKind = d.flags & both == both ? .hole : d.flags & NBD.StateFlag.zero != 0 ? .zero : .data
                if let last = out.last, last.kind == kind, last.end == at {
                    out[out.count - 1].length += n
                } else {
                    out.append(Extent(offset: at, length: n, kind: kind))
                }
                at += n  // every descriptor is > 0 bytes (the decoder checks): progress
            }
        }
        return out
    }

    public func close() throws {
        let wasClosed = closed.withLock { value in
            defer { value = true }
            return value
        }
        guard !wasClosed else { return }
        _ = try? submit(NBDRequest(.disconnect, cookie: 0)).wait()
        try? channel.close().wait()
    }

    deinit { try? close() }

    private func checkWritable(_ operation: String) throws {
        try checkOpen(operation)
        guard capabilities.contains(.writable) else { throw DiskError(.readOnly, name, operation: operation, "opened read-only") }
    }

    private func waitAll(_ futures: [EventLoopFuture<NBDOutcome>]) throws {
        var first: (any Error)?
        for future in futures {
            do { _ = try future.wait() } catch { first = first ?? error }
        }
        if let first { throw first }
    }
}
