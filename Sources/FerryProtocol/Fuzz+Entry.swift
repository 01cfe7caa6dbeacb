import FerryBinary
public import NIOCore

/// The entry point of the wire-frame fuzz target (`FuzzTesting/`) and of the tests that replay
/// its crash inputs. The input's first byte picks how the rest is cut into reads (pieces of
/// 1–256 bytes); the rest is the byte stream. It is decoded twice: as one buffer with
/// `MessageDecoder.next` (the reference), and by `MessageFrameReader` fed the pieces, driven by
/// the caller (`read`, since the reader needs a channel). Both must give the same messages and
/// fail alike; every message must re-encode to a frame that decodes to itself.
public enum ProtocolFuzz {
    /// What a decoder made of a stream: the messages before the first error, and that error.
    public typealias Outcome = (messages: [Message], failed: Bool)

    public static func run(_ bytes: [UInt8], read: ([ByteBuffer]) -> Outcome) throws {
        guard let first = bytes.first else { return }
        let stream = Array(bytes.dropFirst())
        let reference = try decodeAll(stream)
        let cut = Int(first) + 1
        let pieces = stride(from: 0, to: stream.count, by: cut).map { ByteBuffer(bytes: stream[$0..<min(stream.count, $0 + cut)]) }
        let framed = read(pieces)
        // An incomplete last frame is no error for either: the reader drops it when the stream
        // ends (a cut link; the session sees the end of the stream), the reference leaves it.
        guard framed.messages == reference.messages, framed.failed == reference.failed else {
            throw FuzzFinding(
                "MessageFrameReader (reads of \(cut) bytes) gave \(framed.messages.count) messages, failed \(framed.failed); "
                    + "one buffer gave \(reference.messages.count), failed \(reference.failed), \(stream.count - reference.consumed) bytes left")
        }
    }

    /// Every message whose frame lies whole at the front of `bytes`, in order, up to the first
    /// error or incomplete frame, and the bytes they used.
    static func decodeAll(_ bytes: [UInt8]) throws -> (messages: [Message], failed: Bool, consumed: Int) {
        var buffer = ByteBuffer(bytes: bytes)
        var messages: [Message] = []
        do {
            while let message = try MessageDecoder.next(from: &buffer) {
                try checkRoundTrip(message)
                messages.append(message)
            }
        } catch let error as ProtocolError {
            _ = error
            return (messages, true, bytes.count)
        }
        return (messages, false, buffer.readerIndex)
    }

    /// A message must re-encode, whole and as head plus bulk bytes, to a frame decoding to itself.
    static func checkRoundTrip(_ message: Message) throws {
        var whole = ByteBuffer()
        message.write(to: &whole)
        var split = ByteBuffer()
        if var bulk = message.writeFrame(into: &split) { split.writeBuffer(&bulk) }
        for (form, var frame) in [("whole", whole), ("head and bulk", split)] {
            let again: Message?
            do { again = try MessageDecoder.next(from: &frame) } catch {
                throw FuzzFinding("\(message.kind) re-encoded \(form) does not decode: \(error)")
            }
            guard again == message, frame.readableBytes == 0 else {
                throw FuzzFinding("\(message.kind) re-encoded \(form) decodes to \(String(describing: again)) with \(frame.readableBytes) bytes left")
            }
        }
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is ProtocolError }
}
