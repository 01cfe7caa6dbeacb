import FerryDisk
import FerryProtocol
import NIOCore
import NIOPosix

/// Delta sync's fine pass on the receiving session (docs/protocol.md, "Delta sync").
extension ReceiverSession {
    /// A job failed: the first failure is recorded, told to the peer, and closes the channel.
    func failed(_ error: any Error) {
        let first = failure.withLock { recorded -> Bool in
            defer { if recorded == nil { recorded = error } }
            return recorded == nil
        }
        if first { TransferChannel.closeTelling(connection.channel, error as? ProtocolError) }
    }

    /// Delta sync: re-reads the requested segment of the target on the thread pool and
    /// sends its block hashes. Not counted against `workers`: the sender keeps at most one
    /// request per worker outstanding, and `DeltaBlocks` refuses a flood.
    func answer(
        _ request: BlockRequest, _ disk: ReceiverDisk, _ group: inout ThrowingTaskGroup<Void, any Error>,
        _ outbound: NIOAsyncChannelOutboundWriter<Message>
    ) {
        group.addTask {
            do {
                let hashes: BlockHashList
                do {
                    hashes = try await NIOThreadPool.singleton.runIfActive { try disk.hashBlocks(request) }
                } catch let error as DiskError {
                    throw ProtocolError(.io, error.description)
                }
                try await outbound.write(.blockHashes(hashes))
            } catch {
                self.failed(error)
                throw error
            }
        }
    }
}
