public import FerryCopy
public import FerryDisk
public import FerryFormats
import Foundation
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Interoperating with the old runbook: a plain byte stream, no protocol.
///
/// * `ferry receive TARGET --raw --listen ADDR:PORT` accepts `dd if=/dev/sda | nc HOST PORT`
///   and writes it through the copy engine: progress, zero blocks turned into holes
///   (or efficient zeroing), the disk digest printed at the end. A raw stream carries
///   no size, so the target's size must be known (a block device) or given.
/// * `ferry send SOURCE HOST:PORT --raw` feeds a plain `nc -l PORT > disk.img`.
///
/// Nothing here is authenticated or verified end to end — the digest printed on both
/// sides is what lets a person compare. Blocking sockets: one stream, one worker.
public enum RawTransfer {
    public static func receive(
        target path: String, size: UInt64?, listen: HostPort, overwrite: Bool, progress: ProgressMode,
        targetFormat: ImageFormat? = nil, announce: @Sendable (HostPort) -> Void = { _ in }
    ) throws -> TransferSummary {
        let started = Date()
        var diskSize = size
        if diskSize == nil, LocalDisk.isBlockDevice(path) {
            diskSize = try FileDevice.openForReading(path).size
        }
        // A remote disk knows its size too: the whole export (a read-only one is refused here).
        if diskSize == nil, let scheme = try DiskSchemes.scheme(for: path) {
            let device = try scheme.openTarget(path, size: 0)
            diskSize = device.size
            try? device.close()
        }
        guard let diskSize else {
            throw TransferError(.usage, "a raw stream carries no size: pass --size BYTES for a file target")
        }
        // Checked and locked before listening: a bad target is refused before anyone sends.
        let prepared = try ReceiveTargets.prepare([path], overwrite: overwrite, size: diskSize, explicitFormat: targetFormat)
        defer { prepared.release() }
        let server = try RawSocket.listen(listen)
        defer { close(server.fd) }
        announce(HostPort(host: listen.host, port: server.port))
        let client = accept(server.fd, nil, nil)
        guard client >= 0 else { throw TransferError(.network, "accept failed: \(String(cString: strerror(errno)))") }
        defer { close(client) }
        let descriptor = FileDescriptor(rawValue: client)
        let source = StreamDevice(name: "network stream", descriptor: descriptor, size: diskSize, writable: false)
        let commit = try TargetCommit.open(
            path, size: diskSize, format: try prepared.format(for: path), overwrite: overwrite, lock: prepared.lock(for: path))
        return try copy(
            source: source, target: commit.device, targetIsZero: commit.knownZero, progress: progress,
            phase: "receive \(path)", name: path, started: started
        ) { result in
            // Exactly `diskSize` bytes, then the end: a longer stream is not this disk.
            try expectEnd(of: descriptor, after: diskSize)
            try commit.commit(digest: result.digest)
        } onFailure: {
            commit.abandon()
        }
    }

    /// How long a sender that sent every byte may keep the stream open before we take
    /// the silence for its end (`nc` without `-N` never closes it).
    static let endGrace = 10.0

    /// Throws unless the stream ends (or stays silent for `endGrace` seconds) after
    /// the `size` bytes already read.
    static func expectEnd(of descriptor: FileDescriptor, after size: UInt64) throws {
        var waited = 0.0
        while waited < endGrace {
            if Cancellation.interrupt.isCancelled { throw DiskError(.cancelled, "network stream", operation: "read", "interrupted") }
            var entry = pollfd(fd: descriptor.rawValue, events: Int16(POLLIN), revents: 0)
            let r = poll(&entry, 1, 250)
            if r < 0 && errno != EINTR { throw DiskError.system(errno, "network stream", operation: "read", context: "poll") }
            guard r > 0 else {
                waited += 0.25
                continue
            }
            var byte: UInt8 = 0
            let n: Int
            do {
                n = try withUnsafeMutableBytes(of: &byte) { try descriptor.read(into: $0, retryOnInterrupt: true) }
            } catch let e as Errno {
                throw DiskError.system(e.rawValue, "network stream", operation: "read", context: "after the \(size) bytes announced")
            }
            if n == 0 { return }
            throw TransferError(
                .protocolViolation,
                "the stream carried more than the \(size) bytes announced (--size); it is not this disk, nothing was committed")
        }
        try? FileHandle.standardError.write(contentsOf: Data(
            "ferry receive: the sender sent the \(size) bytes announced but kept the stream open; taking that as its end (nc -N closes it)\n".utf8))
    }

    /// Writes to the socket are the network's: a listener that closes early is exit 69
    /// with a message, never a silent SIGPIPE. A source whose size changed while it was
    /// read fails (`SourceWatch`); one written meanwhile gets the warning.
    public static func send(
        source: any BlockDevice, to address: HostPort, progress: ProgressMode, watch: SourceWatch? = nil
    ) throws -> TransferSummary {
        let started = Date()
        let fd = try RawSocket.connect(address)
        defer { close(fd) }
        let sink = StreamDevice(
            name: "\(address)", descriptor: FileDescriptor(rawValue: fd), size: source.size, writable: true, socket: true)
        var changed: String?
        var summary = try copy(
            source: source, target: sink, targetIsZero: false, progress: progress, phase: "send \(source.name)",
            name: sink.name, started: started, networkSide: "write"
        ) { _ in
            changed = try watch?.verdict()
            _ = shutdown(fd, Int32(SHUT_WR))
        } onFailure: {}
        summary.disks[0].sourceChanged = changed
        return summary
    }

    /// `networkSide`: the operation that touches the socket ("read" when receiving,
    /// "write" when sending); its failures are network failures, the others I/O errors.
    private static func copy(
        source: any BlockDevice, target: any BlockDevice, targetIsZero: Bool, progress: ProgressMode, phase: String,
        name: String, started: Date, networkSide: String = "read",
        onSuccess: (CopyResult) throws -> Void, onFailure: () -> Void
    ) throws -> TransferSummary {
        let counters = CopyCounters()
        let reporter = ProgressReporter(mode: progress, phase: phase, total: source.size, counters: counters)
        reporter.start()
        defer { reporter.stop() }
        do {
            var options = CopyOptions()
            options.requestSize = 1 << 20
            // A new sparse file already reads as zeros: zero blocks cost nothing at all.
            options.targetIsZero = targetIsZero
            let result = try CopyEngine.run(source: source, target: target, options: options, counters: counters)
            guard let digest = result.digest else { throw TransferError(.io, "no digest was computed") }
            try onSuccess(result)
            return TransferSummary(
                disks: [TransferSummary.Disk(
                    name: name, size: result.size, dataBytes: result.dataBytes, zeroBytes: result.zeroBytes, digest: digest)],
                seconds: Date().timeIntervalSince(started), verification: .none)
        } catch let error as DiskError {
            onFailure()
            throw TransferError(error.operation == networkSide ? .network : .io, error.description)
        } catch {
            onFailure()
            throw error
        }
    }
}

/// Minimal blocking IPv4/IPv6 TCP sockets for raw mode.
enum RawSocket {
    static func addresses(_ address: HostPort, passive: Bool) throws -> UnsafeMutablePointer<addrinfo> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address.host, String(address.port), &hints, &result)
        guard status == 0, let result else {
            throw TransferError(.network, "cannot resolve \(address): \(String(cString: gai_strerror(status)))")
        }
        return result
    }

    static func listen(_ address: HostPort) throws -> (fd: Int32, port: Int) {
        let info = try addresses(address, passive: true)
        defer { freeaddrinfo(info) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw TransferError(.network, "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, Glibc.listen(fd, 1) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TransferError(.network, "cannot listen on \(address): \(message)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let port = withUnsafeMutablePointer(to: &storage) { pointer -> Int in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
            if Int32(pointer.pointee.ss_family) == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        return (fd, port)
    }

    static func connect(_ address: HostPort) throws -> Int32 {
        let info = try addresses(address, passive: false)
        defer { freeaddrinfo(info) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw TransferError(.network, "socket: \(String(cString: strerror(errno)))") }
        guard Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TransferError(.network, "cannot connect to \(address): \(message)")
        }
        return fd
    }
}
