import FerryDisk
import FerryTransfer
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension InProcessNetwork {
/// Issue 9 item 13: a source that changes while it is sent. A size change fails the
/// disk (the receiver commits nothing); a source written in place is sent with a
/// warning that the copy is at best crash-consistent.
@Suite(.serialized) struct SourceChangeTests {
    /// Reads through to a file device; the first read past `trigger` runs `change` on
    /// the file first, as a running guest or a second writer would.
    final class ChangingSource: BlockDevice {
        let inner: FileDevice
        let trigger: UInt64
        let change: @Sendable () -> Void
        let fired = Atomic<Bool>(false)

        init(_ inner: FileDevice, trigger: UInt64, change: @escaping @Sendable () -> Void) {
            self.inner = inner
            self.trigger = trigger
            self.change = change
        }

        var name: String { inner.name }
        var size: UInt64 { inner.size }
        var logicalSectorSize: Int { inner.logicalSectorSize }
        var capabilities: DiskCapabilities { inner.capabilities }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
            if offset >= trigger, !fired.exchange(true, ordering: .relaxed) { change() }
            try inner.read(into: buffer, at: offset)
        }

        func extents(at offset: UInt64, length: UInt64) throws -> [Extent] { try inner.extents(at: offset, length: length) }
        func flush() throws {}
        func close() throws { try inner.close() }
    }

    /// A source file dated in the past, so a write now moves its times whatever the clock's grain.
    static func source(_ dir: String) throws -> String {
        let path = dir + "/src.img"
        _ = try Loopback.makeRandomDisk(at: path, size: 4 << 20, seed: 81)
        var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        return path
    }

    static func write(_ bytes: [UInt8], to path: String, at offset: off_t) {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, offset) }
        close(fd)
    }

    /// One send of `source` watched at `path`; with `sync`, a delta pass over the target already in `dir`.
    static func send(_ source: ChangingSource, watch path: String, dir: String, sync: Bool = false) async throws
        -> (Result<TransferSummary, any Error>, Result<TransferSummary, any Error>)
    {
        var rc = Loopback.resumableReceiver(targets: [dir + "/dst.img"])
        rc.sync = sync
        rc.overwrite = sync
        let (receiver, port) = try await Loopback.startReceiver(rc)
        var config = Loopback.sendConfig(port: port, code: nil)
        config.sync = sync
        config.watches = [SourceWatch(path: path)]
        config.workers = 1
        let sent: Result<TransferSummary, any Error>
        do { sent = .success(try await TransferSender.run(sources: [source], config)) } catch { sent = .failure(error) }
        let received: Result<TransferSummary, any Error>
        do { received = .success(try await receiver.value) } catch { received = .failure(error) }
        return (sent, received)
    }

    @Test func appendedDuringTheSendFailsAndNothingIsCommitted() async throws {
        let dir = try Loopback.temporaryDirectory()
        let path = try Self.source(dir)
        let source = ChangingSource(try FileDevice.openForReading(path), trigger: 2 << 20) {
            Self.write([1, 2, 3], to: path, at: 4 << 20)
        }
        defer { try? source.close() }
        let (sent, received) = try await Self.send(source, watch: path, dir: dir)
        guard case .failure(let error as TransferError) = sent else {
            Issue.record("the sender did not notice the source grew: \(sent)")
            return
        }
        #expect(error.kind == .io)
        #expect(error.message.contains("changed size while it was sent"), "\(error)")
        if case .success = received { Issue.record("the receiver committed a source that changed size") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
    }

    @Test func overwrittenInPlaceIsSentWithAWarning() async throws {
        let dir = try Loopback.temporaryDirectory()
        let path = try Self.source(dir)
        let source = ChangingSource(try FileDevice.openForReading(path), trigger: 2 << 20) {
            Self.write([1, 2, 3], to: path, at: 100)
        }
        defer { try? source.close() }
        let (sent, received) = try await Self.send(source, watch: path, dir: dir)
        let summary = try sent.get()
        _ = try received.get()
        #expect(summary.disks.first?.sourceChanged?.contains("was modified") == true)
    }

    @Test func anUnchangedSourceSaysNothing() async throws {
        let dir = try Loopback.temporaryDirectory()
        let path = try Self.source(dir)
        let source = ChangingSource(try FileDevice.openForReading(path), trigger: .max) {}
        defer { try? source.close() }
        let (sent, _) = try await Self.send(source, watch: path, dir: dir)
        #expect(try sent.get().disks.first?.sourceChanged == nil)
    }

    /// The one-way stream: a size change replaces `finish` with an error the receiver
    /// acts on; a clean stream's sender claims "sent", not "verified".
    @Test func oneWayStreamTellsTheReceiverOfASizeChange() throws {
        let dir = try Loopback.temporaryDirectory()
        let path = try Self.source(dir)
        for grows in [true, false] {
            let source = ChangingSource(try FileDevice.openForReading(path), trigger: grows ? 2 << 20 : .max) {
                Self.write([1, 2, 3], to: path, at: 4 << 20)
            }
            defer { try? source.close() }
            let streamPath = dir + "/stream"
            let out = open(streamPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            var sc = SendConfiguration(destination: HostPort(host: "-", port: 0))
            sc.progress = .none
            sc.watches = [SourceWatch(path: path)]
            let sent = Result { try PipeTransfer.send(sources: [source], to: out, sc) }
            close(out)
            let input = open(streamPath, O_RDONLY)
            var rc = ReceiveConfiguration(targets: [dir + "/dst.img"], listen: HostPort(host: "-", port: 0))
            rc.progress = .none
            let received = Result { try PipeTransfer.receive(from: input, rc) }
            close(input)
            if grows {
                #expect(throws: TransferError.self) { try sent.get() }
                #expect((received.failure as? TransferError)?.kind == .io, "\(received)")
                #expect(!FileManager.default.fileExists(atPath: dir + "/dst.img"))
            } else {
                #expect(try sent.get().verification == .byReceiver)
                _ = try received.get()
            }
        }
    }
}

}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
