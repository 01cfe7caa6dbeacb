import Foundation
public import NIOCore
import NIOPosix
import Synchronization

/// Where `NBDServer` listens.
public enum NBDListenAddress: Sendable, Equatable {
    case unix(path: String)
    case tcp(host: String, port: Int)
    /// An already listening socket (systemd socket activation: `LISTEN_FDS`, fd 3).
    case socket(Int32)
}

/// ferry's NBD server: exports `BlockDevice`s to any number of clients (nbdcopy, qemu-img,
/// nbdinfo, qemu, the kernel's nbd-client), fixed newstyle only, structured replies (and
/// extended headers when asked) and `base:allocation` from the disks' extents, read-only unless
/// an export says writable; the READ/WRITE data of all clients bounded by one `NBDMemoryBudget`.
public final class NBDServer: Sendable {
    public let exports: [NBDServedExport]
    /// The address clients reach: the socket path, or the bound host and port (port 0 resolved).
    public let listening: NBDListenAddress
    /// The bytes of READ/WRITE data all clients together may hold in the server at once.
    public let memoryBudget: NBDMemoryBudget
    private let channel: any Channel
    private let children = ChildChannels()
    private let removeSocket: String?

    /// TLS when configured: every client must STARTTLS first (FORCEDTLS).
    public let tls: NBDServerTLS?

    /// Serves `exports` on `listen`; `memoryBudget` bytes of READ/WRITE data may be held for all
    /// clients together (`NBDMemoryBudget`: a larger request runs alone); with `tls`, only over TLS
    /// (the certificates are read here: a missing file fails before anything listens).
    public init(
        exports: [NBDServedExport], listen: NBDListenAddress, memoryBudget: Int = NBDMemoryBudget.defaultCapacity, tls: NBDServerTLS? = nil
    ) throws {
        precondition(!exports.isEmpty, "an NBD server needs an export")
        self.exports = exports
        self.tls = tls
        let upgrade = try tls?.upgrade()
        let budget = NBDMemoryBudget(capacity: memoryBudget)
        self.memoryBudget = budget
        let children = self.children
        let pool = NIOThreadPool.singleton
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: true)
            .childChannelInitializer { child in
                let id = ObjectIdentifier(child)
                children.table.withLock { $0[id] = child }
                child.closeFuture.whenComplete { _ in _ = children.table.withLock { $0.removeValue(forKey: id) } }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(NBDServerHandler(exports: exports, pool: pool, budget: budget, tls: upgrade))
                }
            }
        do {
            switch listen {
            case .unix(let path):
                channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
                removeSocket = path
                listening = listen
            case .tcp(let host, let port):
                channel = try bootstrap.childChannelOption(.socketOption(.tcp_nodelay), value: 1).bind(host: host, port: port).wait()
                removeSocket = nil
                listening = .tcp(host: host, port: channel.localAddress?.port ?? port)
            case .socket(let fd):
                channel = try bootstrap.withBoundSocket(fd).wait()
                removeSocket = nil
                listening = listen
            }
        } catch {
            throw NBDError(.connection, "\(listen)", "cannot listen: \(error)")
        }
    }

    /// The NBD URI of export `index` (for `--run`'s `$uri`), nil for an inherited socket.
    public func uri(export index: Int = 0) -> String? {
        let name = exports[index].spec.name
        // nbds with the server's directory: its ca-cert.pem (and, for --tls-verify-peer, a
        // client-cert.pem and client-key.pem put beside it) are what libnbd's clients read.
        // With PSK: the file, as its first user.
        let clientTLS = tls.map { tls in
            NBDClientTLS(
                certificates: tls.certificates, pskFile: tls.pskFile,
                username: tls.pskFile.flatMap { try? NBDPSK.keys($0, peer: $0).keys.sorted().first })
        }
        switch listening {
        case .unix(let path): return NBDURI(endpoint: .unix(path: path), exportName: name, tls: clientTLS).description
        case .tcp(let host, let port): return NBDURI(endpoint: .tcp(host: host, port: port), exportName: name, tls: clientTLS).description
        case .socket: return nil
        }
    }

    /// The client connections open now (each connection of a multi-conn client counts).
    public var connectedClients: Int { children.table.withLock { $0.count } }

    /// Completes when the listening socket is closed.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Stops listening and drops every client; removes the socket file it made.
    public func close() {
        try? channel.close().wait()
        for child in children.table.withLock({ Array($0.values) }) { try? child.close().wait() }
        if let removeSocket { try? FileManager.default.removeItem(atPath: removeSocket) }
    }
}

/// The connected clients of a server, so that `close` can drop them.
private final class ChildChannels: Sendable {
    let table = Mutex<[ObjectIdentifier: any Channel]>([:])
}
