import NIOCore

/// The first message each side sends once the channel is up.
///
/// ```
///  0       4         6              14     15
///  | magic | version | capabilities | role | software (u16 length + UTF-8) |
///    "FRRY"  u16 BE    u64 BE         u8
/// ```
public struct Hello: Sendable, Equatable {
    public static let magic: UInt32 = 0x4652_5259  // "FRRY"
    public static let currentVersion: UInt16 = 1

    public enum Role: UInt8, Sendable { case sender = 0, receiver = 1 }

    public var version: UInt16
    public var capabilities: Capabilities
    public var role: Role
    public var software: String

    public init(version: UInt16 = Hello.currentVersion, capabilities: Capabilities, role: Role, software: String = "ferry") {
        self.version = version
        self.capabilities = capabilities
        self.role = role
        self.software = software
    }

    init(parsing buffer: inout ByteBuffer) throws(ProtocolError) {
        let magic = try buffer.read(UInt32.self, "magic")
        guard magic == Self.magic else {
            throw ProtocolError(.protocolViolation, "the peer is not speaking the ferry protocol (bad magic)")
        }
        version = try buffer.read(UInt16.self, "version")
        capabilities = Capabilities(rawValue: try buffer.read(UInt64.self, "capabilities"))
        guard let role = Role(rawValue: try buffer.read(UInt8.self, "role")) else {
            throw ProtocolError(.protocolViolation, "unknown role in hello")
        }
        self.role = role
        software = try buffer.readWireString("software")
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.magic, endianness: .big)
        buffer.writeInteger(version, endianness: .big)
        buffer.writeInteger(capabilities.rawValue, endianness: .big)
        buffer.writeInteger(role.rawValue)
        buffer.writeWireString(software)
    }
}

/// What a peer can do. Unknown bits are ignored, so new features only need a new bit.
public struct Capabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let zstd = Capabilities(rawValue: 1 << 0)
    public static let lz4 = Capabilities(rawValue: 1 << 1)
    public static let gzip = Capabilities(rawValue: 1 << 2)
    /// Resume from a receiver journal (reserved).
    public static let resume = Capabilities(rawValue: 1 << 3)
    /// Hash exchange / delta sync (reserved, messages 0x50–0x5F).
    public static let hashExchange = Capabilities(rawValue: 1 << 4)
    /// Block hashes (the 32-byte leaves of extents, segments and digests) are XXH3-128
    /// instead of SHA-256. Used only when both hellos carry it.
    public static let xxh3 = Capabilities(rawValue: 1 << 5)
    /// Delta sync may hash blocks with XXH3-128 keyed per disk by the receiver (`ready`'s
    /// `keyedLeaves` flag) instead of SHA-256. Used only with `hashExchange`, when both
    /// hellos carry both.
    public static let keyedXXH3 = Capabilities(rawValue: 1 << 6)
}
