import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Plain blocking TCP on 127.0.0.1, for the peers that are not ferry: a port scanner
/// (`nc -z`), a health check that sends an HTTP request, an idle socket.
enum PlainPeer {
    /// A connected socket, or -1.
    static func connect(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// `nc -z`: connect, close.
    static func connectAndClose(_ port: Int) -> Bool {
        let fd = connect(port)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// Connects, sends `bytes`, closes.
    static func send(_ bytes: [UInt8], to port: Int) -> Bool {
        let fd = connect(port)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// A listener on 127.0.0.1 port 0: (fd, port).
    static func listen() -> (fd: Int32, port: Int)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && Glibc.listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            return nil
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// A relay in front of a receiver, as `ssh -L` or a load balancer is while the receiver
/// restarts: it accepts the first `closing` connections and closes them at once, then
/// relays bytes both ways, flipping the sender's byte at `corrupting` if given (a bad
/// link under `--insecure`). Threads of its own (blocking sockets), off the async pool.
final class FlakyRelay: Sendable {
    let port: Int
    private let listener: Int32
    /// Connections accepted so far.
    let accepted = Arc()

    init?(relayingTo target: Int, closing: Int, corrupting: Int? = nil) {
        guard let (fd, port) = PlainPeer.listen() else { return nil }
        listener = fd
        self.port = port
        let accepted = accepted
        Thread.detachNewThread { [accepted] in
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }  // the listener was shut down
                let n = accepted.value.add(1, ordering: .relaxed).newValue
                if n <= closing {
                    close(client)
                    continue
                }
                let upstream = PlainPeer.connect(target)
                guard upstream >= 0 else {
                    close(client)
                    continue
                }
                let ended = Arc()
                Self.pump(from: client, to: upstream, ended, corrupting: corrupting)
                Self.pump(from: upstream, to: client, ended, corrupting: nil)
            }
        }
    }

    final class Arc: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Copies until either side ends, then shuts both down; the second to end closes them.
    private static func pump(from source: Int32, to sink: Int32, _ ended: Arc, corrupting: Int?) {
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var offset = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                if let at = corrupting, (offset..<offset + n).contains(at) { buffer[at - offset] ^= 0xFF }
                offset += n
                let sent = buffer.withUnsafeBytes { Glibc.send(sink, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
                if sent != n { break }
            }
            shutdown(source, Int32(SHUT_RDWR))
            shutdown(sink, Int32(SHUT_RDWR))
            if ended.value.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
                close(source)
                close(sink)
            }
        }
    }

    /// Stops accepting (the relayed connections end with their peers).
    func stop() { shutdown(listener, Int32(SHUT_RDWR)) }
}
