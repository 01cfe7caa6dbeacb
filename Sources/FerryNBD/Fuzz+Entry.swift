import FerryBinary
import NIOCore

/// The entry point of the NBD fuzz target (`FuzzTesting/Sources/FuzzNBD`) and of the tests that
/// replay its inputs. The first byte picks the parser, the rest is what a hostile peer sent:
///
/// - 0: the server's transmission stream as the client decodes it (`NBDReplyDecoder`) against
///   a fixed table of requests in flight; every reply must re-encode to bytes decoding to itself.
///   With the first byte's high bit set (0x81, 0x84, …), extended replies (extended headers agreed).
/// - 1: the client's stream as the server sees it (`NBDServerHandshake`, then request headers
///   checked by `NBDServerWork.check`; compact or, after `NBD_OPT_EXTENDED_HEADERS`, extended).
/// - 2: the server's negotiation as the client sees it (`NBDClientHandshake`).
///
/// Modes 1 and 2 with the high bit set (0x82, 0x83, 0x85, …) negotiate TLS (a TLS-required server, a
/// client of `nbds://`): the next byte N splits the rest into N bytes before TLS is up and the
/// bytes after it (what would come decrypted).
///
/// Any error but `NBDError` is a finding, and so is a reply that does not round-trip.
public enum NBDFuzz {
    /// The requests "in flight" of mode 0, by cookie.
    public static let pending: [UInt64: NBDPending] = [
        1: NBDPending(command: .read, offset: 4096, length: 65536),
        2: NBDPending(command: .blockStatus, offset: 0, length: 1 << 20),
        3: NBDPending(command: .write, offset: 0, length: 512),
        4: NBDPending(command: .read, offset: 0, length: 512),
    ]
    public static let exportSize: UInt64 = (1 << 20) + 65536

    public static func run(_ bytes: [UInt8]) throws {
        guard let mode = bytes.first else { return }
        var buffer = ByteBuffer(bytes: bytes.dropFirst())
        do {
            let tls = mode & 0x80 != 0
            var afterTLS = ByteBuffer()
            if tls, mode % 3 != 0, let split = buffer.readInteger(as: UInt8.self) {
                let before = buffer.readSlice(length: min(Int(split), buffer.readableBytes)) ?? ByteBuffer()
                afterTLS = buffer
                buffer = before
            }
            switch mode % 3 {
            case 0: try replies(&buffer, extended: tls)
            case 1: server(&buffer, tls: tls, afterTLS: &afterTLS)
            default:
                var client = NBDClientHandshake(exportName: "", peer: "fuzz", tls: tls)
                _ = try client.receive(&buffer)
                if client.awaitsTLS {
                    _ = client.tlsEstablished()
                    _ = try client.receive(&afterTLS)
                }
            }
        } catch is NBDError {
            return
        }
    }

    static func replies(_ buffer: inout ByteBuffer, extended: Bool) throws {
        let decoder = NBDReplyDecoder(exportSize: exportSize, extended: extended)
        while let reply = try decoder.next(from: &buffer, pending: { pending[$0] }) {
            var again = ByteBuffer()
            if extended { reply.writeExtended(offset: pending[reply.cookie]?.offset ?? 0, to: &again) } else { reply.write(to: &again) }
            let decoded: NBDReply?
            do { decoded = try decoder.next(from: &again, pending: { pending[$0] }) } catch {
                throw FuzzFinding("\(reply) re-encoded does not decode: \(error)")
            }
            guard decoded == reply, again.readableBytes == 0 else {
                throw FuzzFinding("\(reply) re-encoded decodes to \(String(describing: decoded)), \(again.readableBytes) bytes left")
            }
        }
    }

    static func server(_ input: inout ByteBuffer, tls: Bool, afterTLS: inout ByteBuffer) {
        let exports = [NBDExportSpec(name: "", size: exportSize, writable: true), NBDExportSpec(name: "ro", size: 512, writable: false)]
        var machine = NBDServerHandshake(exports: exports, tls: tls)
        var (_, outcome) = machine.receive(&input)
        var buffer = input
        if outcome == .startTLS {
            machine.tlsEstablished()
            buffer = afterTLS
            (_, outcome) = machine.receive(&buffer)
        }
        guard case .transmission(let agreement) = outcome else { return }
        for _ in 0..<1024 {
            guard let request = try? NBDRequest.decode(from: &buffer, extended: agreement.extendedHeaders) else { return }
            _ = NBDServerWork.check(request, export: exports[agreement.export], agreement: agreement)
            let payload = request.payloadLength(extended: agreement.extendedHeaders)
            guard payload <= NBD.Limit.payload, buffer.readableBytes >= Int(payload) else { return }
            buffer.moveReaderIndex(forwardBy: Int(payload))
        }
    }
}
