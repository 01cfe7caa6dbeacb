import FerryCopy
public import FerryDisk
import FerryProtocol
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The protocol over a one-way byte stream: `ferry send SOURCE - | ssh host ferry
/// receive TARGET --stdin`. ssh provides the security; the stream carries the same
/// messages (hello, disk, extents with block hashes, finish with the digest), and the
/// receiver checks all of it exactly as over the network. Nothing flows back, so the
/// sender cannot know the verdict: its summary says "sent", never "verified", and its
/// exit status means "all sent". The receiver's (ssh passes it on, and it is the
/// pipeline's status) means "verified and durable". No resume, no compression negotiation.
public enum PipeTransfer {
    public static func send(sources: [any BlockDevice], to fd: Int32, _ config: SendConfiguration) throws -> TransferSummary {
        let started = Date()
        let out = FDWriter(fd: fd)
        var buffer = ByteBuffer()
        let offer = LeafHash.offer(config.digest)
        let leaf: LeafHash = offer.contains(.xxh3) ? .xxh3 : .sha256
        Message.hello(Hello(capabilities: offer, role: .sender)).write(to: &buffer)
        try out.write(&buffer)
        var summaries: [TransferSummary.Disk] = []
        for (i, source) in sources.enumerated() {
            let index = UInt32(i)
            Message.disk(DiskDescription(
                index: index, count: UInt32(sources.count), size: source.size,
                sectorSize: UInt32(source.logicalSectorSize == 4096 ? 4096 : 512), name: source.name)).write(to: &buffer)
            let counters = CopyCounters()
            let reporter = ProgressReporter(mode: config.progress, phase: "send \(source.name)", total: source.size, counters: counters)
            reporter.start()
            defer { reporter.stop() }
            // As over TCP: a disk read whole is scouted for zeros while the pipe (ssh, nc) is full.
            let scout = ZeroScout.enabled && ZeroScout.worthwhile(for: source)
                ? ZeroScout(source: source, grain: UInt64(config.requestSize)) : nil
            defer { scout?.stopWaiting() }
            let streamer = SourceStreamer(
                index: index, source: source, requestSize: config.requestSize, counters: counters, policy: nil, leaf: leaf,
                scout: scout)
            let clock = ContinuousClock()
            while true {
                let started = clock.now
                guard let messages = try streamer.next() else { break }
                let prepared = clock.now
                for m in messages { m.write(to: &buffer) }
                try out.write(&buffer)
                if clock.now - prepared > prepared - started { scout?.kick() }
            }
            scout?.stopWaiting()
            let changed: String?
            do {
                changed = try config.watch(i)?.verdict()
            } catch let error as TransferError {
                // Tell the receiver instead of `finish`: it discards the disk.
                Message.error(ErrorMessage(ProtocolError(.io, error.message))).write(to: &buffer)
                try? out.write(&buffer)
                throw error
            }
            let digest = try streamer.digest.finalize()
            Message.finish(Finish(disk: index, digest: digest.bytes)).write(to: &buffer)
            try out.write(&buffer)
            summaries.append(TransferSummary.Disk(
                name: source.name, size: source.size, dataBytes: counters.data.load(ordering: .relaxed),
                zeroBytes: counters.zero.load(ordering: .relaxed), digest: digest, sourceChanged: changed,
                zeroScouted: scout?.statistics.skipped ?? 0))
        }
        return TransferSummary(disks: summaries, seconds: Date().timeIntervalSince(started), verification: .byReceiver)
    }

    public static func receive(from fd: Int32, _ config: ReceiveConfiguration) throws -> TransferSummary {
        let started = Date()
        let prepared = try ReceiveTargets.prepare(config.targets, overwrite: config.overwrite, explicitFormat: config.targetFormat)
        defer { prepared.release() }
        var machine = ReceiverStateMachine(diskCount: config.targets.count, capabilities: [])
        var opened: [UInt32: ReceiverDisk] = [:]
        var summaries: [TransferSummary.Disk] = []
        var reporter: ProgressReporter?
        defer { reporter?.stop() }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(8 << 20)
        do {
            while true {
                while let message = try MessageDecoder.next(from: &buffer) {
                    var action = machine.received(message)
                    while true {
                        switch action {
                        case .reply, .awaitNextDisk:
                            break
                        case .openDisk(let description):
                            let counters = CopyCounters()
                            let path = config.targets[Int(description.index)]
                            let format = try prepared.format(for: path)
                            let target = try DiskTargets.open(
                                path, size: format == .raw ? description.size : 0, overwrite: config.overwrite,
                                lock: prepared.lock(for: path))
                            let disk = try ReceiverDisk(
                                description: description, target: target, format: format, counters: counters,
                                journal: nil, leaf: try LeafHash.following(machine.peerCapabilities))
                            opened[description.index] = disk
                            reporter?.stop()
                            reporter = ProgressReporter(
                                mode: config.progress, phase: "receive \(target.path)", total: description.size, counters: counters)
                            reporter?.start()
                            action = machine.diskOpened(description.index, flags: 0)
                            continue
                        case .write(let extent): try opened[extent.disk]?.write(extent)
                        case .writeCompressed, .same, .hashBlocks, .sameBlocks:
                            throw ProtocolError(.protocolViolation, "compressed or resumed extents on a one-way stream")
                        case .zero(let extent): try opened[extent.disk]?.zero(extent)
                        case .finishDisk(let finish):
                            guard let disk = opened[finish.disk] else { throw ProtocolError(.protocolViolation, "finish without a disk") }
                            // Flush, compare, block 0, rename (`TargetCommit`): a mismatch commits nothing.
                            let digest = try disk.finish(expected: finish.digest)
                            summaries.append(TransferSummary.Disk(
                                name: disk.target.path, size: disk.description.size,
                                dataBytes: disk.counters.data.load(ordering: .relaxed),
                                zeroBytes: disk.counters.zero.load(ordering: .relaxed), digest: digest))
                            action = machine.diskFinished(finish.disk)
                            continue
                        case .done:
                            return TransferSummary(disks: summaries, seconds: Date().timeIntervalSince(started))
                        case .fail(let error):
                            throw TransferError(error, fromPeer: false)
                        case .peerFailed(let error):
                            throw TransferError(error, fromPeer: true)
                        }
                        break
                    }
                }
                buffer.discardReadBytes()
                let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { raw -> Int in
                    let r = Glibc.read(fd, raw.baseAddress, raw.count)
                    if r < 0 { throw DiskError.system(errno, "stdin", operation: "read") }
                    return r
                }
                if n == 0 {
                    throw TransferError(.network, "the stream ended before the transfer finished")
                }
            }
        } catch {
            for disk in opened.values { disk.target.abandon() }
            if let e = error as? ProtocolError { throw TransferError(e, fromPeer: false) }
            if let e = error as? DiskError { throw TransferError(.io, e.description) }
            if let e = error as? DigestError { throw TransferError(.verification, e.description) }
            if let e = error as? VerificationError {
                throw TransferError(.verification, "\(e.what): digest \(e.actual.hex) does not match the sender's \(e.expected.hex)")
            }
            throw error
        }
    }
}

/// Writes whole buffers to a descriptor, retrying short writes and EINTR.
struct FDWriter {
    let fd: Int32

    func write(_ buffer: inout ByteBuffer) throws {
        while buffer.readableBytes > 0 {
            let n = buffer.withUnsafeReadableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE {
                    // The reading end is gone: the receiver stopped (its exit status says why) or ssh did.
                    throw TransferError(
                        .network, "the receiving end closed the stream before everything was sent (the receiver's exit status says why)")
                }
                throw TransferError(.network, "writing the stream failed: \(String(cString: strerror(errno)))")
            }
            buffer.moveReaderIndex(forwardBy: n)
        }
        buffer.clear()
    }
}
