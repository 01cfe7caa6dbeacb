public import FerryDisk
import Foundation
import Synchronization

/// An NBD export over several connections (proto.md, `NBD_FLAG_CAN_MULTI_CONN`: "the server will
/// correctly handle multiple connections to the same export … from the same client"), as the
/// `BlockDevice` every command uses for `nbd://`. Each connection is an `NBDClient`; calls go to
/// them in turn, so the requests of concurrent callers (the copy engine's workers) travel over
/// several sockets and the server serves them on several of its threads (qemu-nbd and nbdkit
/// run one coroutine or thread per connection), as nbdcopy does with its 4 connections.
///
/// Only when the server sets the flag: without it a second connection may see stale data (or, for
/// `qemu-nbd` without `-e`, never get past the accept), so one connection is used. Every extra
/// connection must describe the export as the first did (size and transmission flags); a server
/// that does not is refused, nothing read. FLUSH is sent on every connection: the spec promises a
/// flush on any one covers the writes completed on all, but each costs the server little once the
/// first has run, and it keeps ferry right with servers that keep per-connection caches.
public final class NBDConnectionPool: BlockDevice {
    /// Connections used when the server allows several and `FERRY_NBD_CONNECTIONS` is not set
    /// (nbdcopy's default too).
    public static let defaultConnections = 4
    /// The most `FERRY_NBD_CONNECTIONS` may ask for (each is a socket and a thread on the server).
    public static let maximumConnections = 16
    public static let environmentVariable = "FERRY_NBD_CONNECTIONS"

    /// The open connections: one, or as many as asked when the server offers multi-conn.
    public let connections: [NBDClient]
    public let name: String
    public let size: UInt64
    public let logicalSectorSize = 512
    public let capabilities: DiskCapabilities
    /// What the first connection agreed (all of them agreed the same size and flags).
    public let negotiated: NBDNegotiated
    private let turn = Atomic<UInt>(0)

    /// Connects to `uri`, then, when the server sets `NBD_FLAG_CAN_MULTI_CONN`, opens more
    /// connections up to `connections` (nil: `FERRY_NBD_CONNECTIONS`, else `defaultConnections`).
    public init(uri: NBDURI, writable: Bool = false, connections wanted: Int? = nil) throws {
        let count = try wanted ?? Self.connectionsFromEnvironment()
        let first = try NBDClient(uri: uri, writable: writable)
        var opened = [first]
        if count > 1, first.negotiated.has(NBD.TransmissionFlag.canMultiConn) {
            do {
                for index in 1..<count {
                    let next = try NBDClient(uri: uri, writable: writable)
                    opened.append(next)
                    try Self.checkAgreement(first, next, index: index, of: count)
                }
            } catch {
                for client in opened { try? client.close() }
                throw error
            }
        }
        connections = opened
        name = first.name
        size = first.size
        capabilities = first.capabilities.union(.remote)
        negotiated = first.negotiated
    }

    public convenience init(_ uri: String, writable: Bool = false, connections: Int? = nil) throws {
        try self.init(uri: try NBDURI(parsing: uri), writable: writable, connections: connections)
    }

    /// `FERRY_NBD_CONNECTIONS` (1…16; 1 is a single connection), or `defaultConnections`.
    public static func connectionsFromEnvironment(_ environment: [String: String]? = nil) throws -> Int {
        guard let text = (environment ?? ProcessInfo.processInfo.environment)[environmentVariable] else { return defaultConnections }
        guard let count = Int(text.trimmingCharacters(in: .whitespaces)), (1...maximumConnections).contains(count) else {
            throw NBDError(.badSetting, "\(environmentVariable)=\(text)", "the number of NBD connections must be 1 to \(maximumConnections) (1: a single connection)")
        }
        return count
    }

    /// A server that offers multi-conn shares one export among the connections: each must see
    /// the same size and flags (a different size is another disk, or a lie; refused).
    static func checkAgreement(_ first: NBDClient, _ other: NBDClient, index: Int, of count: Int) throws {
        let a = first.negotiated, b = other.negotiated
        guard a.size != b.size || a.transmissionFlags != b.transmissionFlags || a.structuredReplies != b.structuredReplies
            || (a.baseAllocation == nil) != (b.baseAllocation == nil) || a.extendedHeaders != b.extendedHeaders
        else { return }
        func describe(_ n: NBDNegotiated) -> String {
            "\(n.size) bytes, flags 0x\(String(n.transmissionFlags, radix: 16))"
                + (n.structuredReplies ? ", structured replies" : "") + (n.baseAllocation != nil ? ", base:allocation" : "")
                + (n.extendedHeaders ? ", extended headers" : "")
        }
        throw NBDError(
            .protocolViolation, first.name,
            "connection \(index + 1) of \(count) got \(describe(b)) but the first got \(describe(a)); a server offering "
                + "multi-conn must describe one export the same way on every connection (\(environmentVariable)=1 uses one)")
    }

    /// The next connection in turn.
    private var next: NBDClient {
        connections[Int(turn.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(connections.count))]
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try next.read(into: buffer, at: offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try next.write(buffer, at: offset)
    }

    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try next.writeZeros(at: offset, length: length, mayDiscard: mayDiscard)
    }

    /// NBD_CMD_TRIM on one connection (advice; see `NBDClient.trim`).
    public func trim(at offset: UInt64, length: UInt64) throws {
        try next.trim(at: offset, length: length)
    }

    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        try next.extents(at: offset, length: length)
    }

    /// FLUSH on every connection, one after another; the first error is thrown after all ran.
    public func flush() throws {
        try each { try $0.flush() }
    }

    /// Closes every connection (NBD_CMD_DISC on each).
    public func close() throws {
        try each { try $0.close() }
    }

    private func each(_ body: (NBDClient) throws -> Void) throws {
        var first: (any Error)?
        for client in connections {
            do { try body(client) } catch { first = first ?? error }
        }
        if let first { throw first }
    }
}
