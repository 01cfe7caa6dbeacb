/// The Network Block Device protocol's numbers (NetworkBlockDevice/nbd `doc/proto.md`,
/// "fixed newstyle" negotiation and the transmission phase; `/work/shared/domain/formats.md` §4).
/// Every integer on the wire is big-endian.
///
/// ```
/// handshake   S: "NBDMAGIC" u64  "IHAVEOPT" u64  u16 handshake flags
///             C: u32 client flags
///             C: "IHAVEOPT" u64  u32 option  u32 length  data            (an option)
///             S: 0x3e889045565a9 u64  u32 option  u32 type  u32 length  data   (a reply)
/// request     u32 0x25609513  u16 flags  u16 type  u64 cookie  u64 offset  u32 length  [data]
/// simple      u32 0x67446698  u32 error  u64 cookie  [data of a READ]
/// structured  u32 0x668e33ef  u16 flags  u16 type  u64 cookie  u32 length  payload
/// ext request u32 0x21e41c71  u16 flags  u16 type  u64 cookie  u64 offset  u64 length  [data]
/// ext reply   u32 0x6e8a278c  u16 flags  u16 type  u64 cookie  u64 offset  u64 length  payload
/// ```
/// The last two are the extended headers (`NBD_OPT_EXTENDED_HEADERS`, the spec's
/// `extension-ext-header` branch): one 32-byte header each way, 64-bit lengths.
public enum NBD {
    public static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943  // "NBDMAGIC"
    public static let optionMagic: UInt64 = 0x4948_4156_454f_5054  // "IHAVEOPT"
    public static let optionReplyMagic: UInt64 = 0x0003_e889_0455_65a9
    public static let requestMagic: UInt32 = 0x2560_9513
    public static let simpleReplyMagic: UInt32 = 0x6744_6698
    public static let structuredReplyMagic: UInt32 = 0x668e_33ef
    public static let extendedRequestMagic: UInt32 = 0x21e4_1c71
    public static let extendedReplyMagic: UInt32 = 0x6e8a_278c

    /// The IANA port of NBD.
    public static let defaultPort = 10809
    /// The only metadata context ferry reads or serves.
    public static let baseAllocation = "base:allocation"

    /// Handshake flags (server, u16).
    public enum HandshakeFlag {
        public static let fixedNewstyle: UInt16 = 1 << 0
        public static let noZeroes: UInt16 = 1 << 1
    }

    /// Client flags (u32).
    public enum ClientFlag {
        public static let fixedNewstyle: UInt32 = 1 << 0
        public static let noZeroes: UInt32 = 1 << 1
    }

    /// Option numbers.
    public enum Option: UInt32, Sendable {
        case exportName = 1, abort = 2, list = 3, startTLS = 5, info = 6, go = 7, structuredReply = 8
        case listMetaContext = 9, setMetaContext = 10, extendedHeaders = 11
    }

    /// Option reply types; errors have bit 31 set.
    public enum Reply {
        public static let ack: UInt32 = 1
        public static let server: UInt32 = 2
        public static let info: UInt32 = 3
        public static let metaContext: UInt32 = 4
        public static let errorBit: UInt32 = 1 << 31
        public static let errUnsupported: UInt32 = errorBit | 1
        public static let errPolicy: UInt32 = errorBit | 2
        public static let errInvalid: UInt32 = errorBit | 3
        /// The server will not go on until TLS is initiated (FORCEDTLS: every option before STARTTLS).
        public static let errTLSRequired: UInt32 = errorBit | 5
        public static let errUnknown: UInt32 = errorBit | 6
        public static let errTooBig: UInt32 = errorBit | 9
        public static let errExtHeaderRequired: UInt32 = errorBit | 10
    }

    /// `NBD_REP_INFO` item types.
    public enum Info {
        public static let export: UInt16 = 0
        public static let name: UInt16 = 1
        public static let description: UInt16 = 2
        public static let blockSize: UInt16 = 3
    }

    /// Transmission flags (u16).
    public enum TransmissionFlag {
        public static let hasFlags: UInt16 = 1 << 0
        public static let readOnly: UInt16 = 1 << 1
        public static let sendFlush: UInt16 = 1 << 2
        public static let sendFUA: UInt16 = 1 << 3
        public static let sendTrim: UInt16 = 1 << 5
        public static let sendWriteZeroes: UInt16 = 1 << 6
        public static let sendDF: UInt16 = 1 << 7
        public static let canMultiConn: UInt16 = 1 << 8
    }

    /// Commands (request type, u16).
    public enum Command: UInt16, Sendable {
        case read = 0, write = 1, disconnect = 2, flush = 3, trim = 4, cache = 5, writeZeroes = 6, blockStatus = 7
    }

    /// Command flags (u16).
    public enum CommandFlag {
        public static let fua: UInt16 = 1 << 0
        public static let noHole: UInt16 = 1 << 1
        public static let dontFragment: UInt16 = 1 << 2
        public static let reqOne: UInt16 = 1 << 3
        /// Extended headers: the length is a payload that follows (always on WRITE), not an effect length.
        public static let payloadLength: UInt16 = 1 << 5
    }

    /// Structured reply chunk types and flags.
    public enum Chunk {
        public static let flagDone: UInt16 = 1 << 0
        public static let none: UInt16 = 0
        public static let offsetData: UInt16 = 1
        public static let offsetHole: UInt16 = 2
        public static let blockStatus: UInt16 = 5
        /// Extended headers' block status: u32 context, u32 count, then u64 length, u64 flags each.
        public static let blockStatusExtended: UInt16 = 6
        public static let error: UInt16 = 32769
        public static let errorOffset: UInt16 = 32770
    }

    /// `base:allocation` descriptor flags.
    public enum StateFlag {
        public static let hole: UInt32 = 1 << 0
        public static let zero: UInt32 = 1 << 1
    }

    /// Errno values on the wire (proto.md "Error values").
    public enum Errno {
        public static let eperm: UInt32 = 1
        public static let eio: UInt32 = 5
        public static let enomem: UInt32 = 12
        public static let einval: UInt32 = 22
        public static let enospc: UInt32 = 28
        public static let eoverflow: UInt32 = 75
        public static let enotsup: UInt32 = 95
        public static let eshutdown: UInt32 = 108
    }

    /// Named limits against a hostile peer.
    public enum Limit {
        /// The largest option or option reply ferry accepts (names are ≤ 4096 bytes in the spec).
        public static let optionLength: UInt32 = 64 << 10
        /// The largest READ/WRITE payload ferry sends, serves or accepts: 32 MiB, what qemu-nbd
        /// and nbdkit advertise as their maximum.
        public static let payload: UInt32 = 32 << 20
        /// The largest non-data structured chunk (a block status of 128 Ki descriptors).
        public static let metadataChunk: UInt32 = 1 << 20
        /// Option replies a client reads before giving up on one option.
        public static let repliesPerOption = 1024
        /// Options a server answers on one connection before it drops the client.
        public static let optionsPerConnection = 1024
    }
}
