import NIOCore

/// Receiver → sender: how much of disk `disk` is written, and how much of that is
/// on stable storage (flushed and recorded in the resume journal). Progress on the
/// sender counts `written`; only `durable` survives a crash.
///
/// ```
///  0      4         12
///  | disk | written | durable |
///    u32    u64       u64
/// ```
public struct Ack: Sendable, Equatable {
    public var disk: UInt32
    public var written: UInt64
    public var durable: UInt64

    public init(disk: UInt32, written: UInt64, durable: UInt64) {
        self.disk = disk
        self.written = written
        self.durable = durable
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        written = try buffer.read(UInt64.self, "written")
        durable = try buffer.read(UInt64.self, "durable")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(written, endianness: .big)
        buffer.writeInteger(durable, endianness: .big)
    }
}

/// Sender → receiver: every extent of `disk` has been sent; here is the sender's digest.
///
/// ```
///  0      4
///  | disk | digest (32 bytes, blkhash SHA-256) |
/// ```
public struct Finish: Sendable, Equatable {
    public var disk: UInt32
    public var digest: [UInt8]

    public init(disk: UInt32, digest: [UInt8]) {
        self.disk = disk
        self.digest = digest
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        guard let bytes = buffer.readBytes(length: WireLimits.hashSize) else {
            throw ProtocolError(.protocolViolation, "message ends inside field 'digest'")
        }
        digest = bytes
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeBytes(digest.prefix(WireLimits.hashSize))
    }
}

/// Receiver → sender: disk `disk` is flushed and committed (status 0) or not; the
/// receiver's own digest, computed from the blocks it verified and wrote.
///
/// ```
///  0      4        5
///  | disk | status | digest (32 bytes) |
///    u32    u8       0 = verified and durable, 1 = digest mismatch
/// ```
public struct DiskResult: Sendable, Equatable {
    public enum Status: UInt8, Sendable { case verified = 0, mismatch = 1 }
    public var disk: UInt32
    public var status: Status
    public var digest: [UInt8]

    public init(disk: UInt32, status: Status, digest: [UInt8]) {
        self.disk = disk
        self.status = status
        self.digest = digest
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        disk = try buffer.read(UInt32.self, "disk")
        guard let status = Status(rawValue: try buffer.read(UInt8.self, "status")) else {
            throw ProtocolError(.protocolViolation, "unknown result status")
        }
        self.status = status
        guard let bytes = buffer.readBytes(length: WireLimits.hashSize) else {
            throw ProtocolError(.protocolViolation, "message ends inside field 'digest'")
        }
        digest = bytes
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(disk, endianness: .big)
        buffer.writeInteger(status.rawValue)
        buffer.writeBytes(digest.prefix(WireLimits.hashSize))
    }
}

/// Either side: the session is over because of `code`; `message` says why.
///
/// ```
///  0      2
///  | code | message (u16 length + UTF-8) |
///    u16
/// ```
public struct ErrorMessage: Sendable, Equatable {
    public var code: ProtocolError.Code
    public var message: String

    public init(_ error: ProtocolError) {
        code = error.code
        message = error.detail
    }

    public var error: ProtocolError { ProtocolError(code, message) }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        code = ProtocolError.Code(rawValue: try buffer.read(UInt16.self, "code")) ?? .unknown
        message = try buffer.readWireString("message")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(code.rawValue, endianness: .big)
        buffer.writeWireString(message)
    }
}
