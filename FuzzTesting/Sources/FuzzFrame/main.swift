import FerryBinary
import FerryProtocol
import NIOCore
import NIOEmbedded

/// libFuzzer's entry: a byte stream cut into reads and decoded by `MessageFrameReader`, compared
/// with decoding it as one buffer (`ProtocolFuzz.run`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try ProtocolFuzz.run(bytes) { pieces in
            let channel = EmbeddedChannel(handler: MessageFrameReader())
            var messages: [Message] = []
            var failed = false
            for piece in pieces where !failed {
                do { try channel.writeInbound(piece) } catch { failed = true }
                while let message = try? channel.readInbound(as: Message.self) { messages.append(message) }
            }
            if !failed {
                channel.pipeline.fireChannelInactive()
                do { try channel.throwIfErrorCaught() } catch { failed = true }
            }
            _ = try? channel.finish()
            return (messages, failed)
        }
    } catch {
        fatalError("FuzzFrame: \(error)")
    }
    return 0
}
