public import FerryDisk
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// One file of a datastore, read by `Range` GETs through a session: the random-access file
/// FerryFormats' VMDK reader opens (descriptor, flat, sparse, delta and seSparse extents).
///
/// A read under `pageSize` bytes goes through a small cache of aligned pages, so the metadata
/// walks of the VMDK reader (headers, grain directories, descriptors) and its grain-by-grain
/// reads cost one page fetch, not one request per field or grain; a page is fetched as up to
/// the session's stream count of ranges at once, on separate connections. A larger read is
/// split into `rangeSize` pieces, as many in flight. Each reply must be a
/// 206 with the asked `Content-Range` and exactly that many bytes; a cut reply is retried.
public final class ESXiFile: BlockDevice {
    public let name: String
    public let size: UInt64
    public var logicalSectorSize: Int { 512 }
    public var capabilities: DiskCapabilities { [.randomAccess] }

    let session: ESXiSession
    let url: String
    /// A cached page: 4 MiB, fetched as up to `streams` ranges in parallel (the VMDK reader asks
    /// for one 64 KiB grain at a time; a page keeps several connections busy with them).
    static let pageSize = 4 << 20
    static let cachedPages = 8
    private let cache = Mutex(PageCache())
    private let gate = PageGate()
    private let counters = Mutex((requests: 0, bytes: UInt64(0), resumed: 0))

    /// Probes `path` with `Range: bytes=0-0`: the reply must be a 206 naming the file's size.
    /// Throws `.notFound` for a 404, `.protocolViolation` for an HTML page or a 200.
    public init(session: ESXiSession, datastore: String, path: String) throws {
        self.session = session
        url = session.folderURL(datastore: datastore, path: path)
        name = "[\(datastore)] \(path)"
        let reply = try session.send(url, headers: [("Range", "bytes=0-0")], maxBody: 1 << 16, subject: name)
        try Self.checkFound(reply, name)
        guard reply.status.code == 206 else {
            throw ESXiError(
                .protocolViolation, name,
                "the host answered \(reply.status.code) to a Range request, not 206: it does not serve ranges of this file, so ferry cannot read it in place")
        }
        guard let range = reply.headers.first(name: "Content-Range"), let total = Self.total(of: range) else {
            throw ESXiError(.protocolViolation, name, "the 206 reply names no file size (Content-Range: \(reply.headers.first(name: "Content-Range") ?? "none"))")
        }
        size = total
    }

    /// Requests and bytes fetched so far (what the benchmark compares with the allocated data).
    public var fetched: (requests: Int, bytes: UInt64) { counters.withLock { ($0.requests, $0.bytes) } }
    /// Ranges cut part-way and resumed from their last byte.
    public var resumedRanges: Int { counters.withLock { $0.resumed } }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        guard buffer.count > 0 else { return }
        if buffer.count < Self.pageSize {
            try readCached(into: buffer, at: offset)
        } else {
            try readParallel(into: buffer, at: offset, piece: max(Self.pageSize, session.options.rangeSize))
        }
    }

    /// Small reads: whole aligned pages, kept in a little LRU cache.
    private func readCached(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let at = offset + UInt64(done)
            let index = at / UInt64(Self.pageSize)
            let page = try page(index)
            let within = Int(at - index * UInt64(Self.pageSize))
            let n = min(buffer.count - done, page.count - within)
            guard n > 0 else { throw ESXiError(.protocolViolation, name, "page \(index) is shorter than the file size says") }
            page.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n]).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[within..<within + n]))
            }
            done += n
        }
    }

    private func page(_ index: UInt64) throws -> [UInt8] {
        // Two readers missing the same page: one fetches, the other waits for it.
        gate.enter(index)
        defer { gate.leave(index) }
        if let hit = cache.withLock({ $0.get(index) }) { return hit }
        let start = index * UInt64(Self.pageSize)
        let length = Int(min(UInt64(Self.pageSize), size - start))
        var bytes = [UInt8](repeating: 0, count: length)
        let streams = max(1, session.currentStreams)
        let piece = max(256 << 10, (length + streams - 1) / streams)
        try bytes.withUnsafeMutableBytes { try readParallel(into: $0, at: start, piece: piece) }
        cache.withLock { $0.put(index, bytes, limit: Self.cachedPages) }
        return bytes
    }

    /// `piece`-sized ranges, as many in flight as the session allows.
    private func readParallel(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, piece: Int) throws {
        let starts = Array(stride(from: 0, to: buffer.count, by: piece))
        if starts.count == 1 { return try fetch(into: buffer, at: offset) }
        let failure = Mutex<(any Error)?>(nil)
        let next = Mutex(0)
        let base = UInt(bitPattern: buffer.baseAddress)
        let count = buffer.count
        let workers = min(starts.count, max(1, session.currentStreams))
        // Threads of their own, not concurrentPerform: that runs only as many at once as there
        // are cores, and each of these mostly waits on the network.
        let work: @Sendable () -> Void = {
            while true {
                let i: Int? = next.withLock { n in
                    guard n < starts.count else { return nil }
                    defer { n += 1 }
                    return n
                }
                guard let i, failure.withLock({ $0 == nil }) else { return }
                let from = starts[i]
                let n = min(piece, count - from)
                // The caller's buffer outlives every worker (joined below), and the pieces do not overlap.
                let slice = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: base + UInt(from)), count: n)
                do {
                    try self.fetch(into: slice, at: offset + UInt64(from))
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        let done = DispatchGroup()
        for _ in 1..<workers {
            done.enter()
            Thread {
                work()
                done.leave()
            }.start()
        }
        work()
        done.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Ranged GETs of exactly `buffer.count` bytes at `offset`, written straight into
    /// `buffer`. A reply cut part-way is resumed from its last byte (a new range for the rest),
    /// so a flaky link costs the bytes it lost, not the whole range; every try counts
    /// against the session's attempts.
    private func fetch(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let last = offset + UInt64(buffer.count) - 1
        var got = 0
        var tries = 0
        while got < buffer.count {
            tries += 1
            let start = offset + UInt64(got)
            let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[got...])
            let received: Int
            do {
                let reply = try session.receive(url, headers: [("Range", "bytes=\(start)-\(last)")], into: rest, subject: name)
                counters.withLock { c in
                    c.requests += 1
                    c.bytes += UInt64(reply.received)
                }
                try Self.checkFound(status: reply.status, headers: reply.headers, name)
                guard reply.status.code == 206 else {
                    throw ESXiError(.protocolViolation, name, "the host answered \(reply.status.code) to a Range request, not 206: it stopped serving ranges")
                }
                let expected = "bytes \(start)-\(last)/\(size)"
                guard let range = reply.headers.first(name: "Content-Range"), range == expected else {
                    throw ESXiError(.protocolViolation, name, "asked for \(expected), the host sent Content-Range: \(reply.headers.first(name: "Content-Range") ?? "none")")
                }
                received = reply.received
            } catch let cut as ESXiSession.Cut {
                counters.withLock { c in
                    c.requests += 1
                    c.bytes += UInt64(cut.received)
                    c.resumed += 1
                }
                received = cut.received
            }
            got += received
            guard got == buffer.count || tries < session.options.attempts else {
                throw ESXiError(.protocolViolation, name, "the range \(offset)-\(last) came back with \(got) of \(buffer.count) bytes after \(tries) tries: the file is truncated or the host cuts replies")
            }
        }
    }

    static func checkFound(_ reply: ESXiSession.Reply, _ name: String) throws {
        try checkFound(status: reply.status, headers: reply.headers, name)
    }

    static func checkFound(status: HTTPResponseStatus, headers: HTTPHeaders, _ name: String) throws {
        if status.code == 404 {
            throw ESXiError(.notFound, name, "no such file on the datastore (HTTP 404)")
        }
        if let type = headers.first(name: "Content-Type"), type.lowercased().hasPrefix("text/html") {
            throw ESXiError(.protocolViolation, name, "the host sent an HTML page (HTTP \(status.code)), not the file: is this a directory, or a login or error page?")
        }
        guard (200..<300).contains(status.code) else {
            throw ESXiError(.protocolViolation, name, "the host answered HTTP \(status.code) \(status.reasonPhrase)")
        }
    }

    /// The total of `bytes a-b/TOTAL`.
    static func total(of contentRange: String) -> UInt64? {
        guard let slash = contentRange.lastIndex(of: "/") else { return nil }
        return UInt64(contentRange[contentRange.index(after: slash)...].trimmingCharacters(in: .whitespaces))
    }
}

/// A few whole pages of a remote file, least recently used dropped first.
struct PageCache {
    private var pages: [UInt64: [UInt8]] = [:]
    private var order: [UInt64] = []

    mutating func get(_ index: UInt64) -> [UInt8]? {
        guard let page = pages[index] else { return nil }
        order.removeAll { $0 == index }
        order.append(index)
        return page
    }

    mutating func put(_ index: UInt64, _ page: [UInt8], limit: Int) {
        if pages[index] == nil { order.append(index) }
        pages[index] = page
        while order.count > limit { pages[order.removeFirst()] = nil }
    }
}

/// One fetcher per page at a time: a reader that misses a page another reader is fetching waits
/// for it instead of fetching it again (which doubled the bytes read with two copy workers).
final class PageGate: @unchecked Sendable {
    // @unchecked: `busy` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var busy: Set<UInt64> = []

    func enter(_ index: UInt64) {
        condition.lock()
        while busy.contains(index) { condition.wait() }
        busy.insert(index)
        condition.unlock()
    }

    func leave(_ index: UInt64) {
        condition.lock()
        busy.remove(index)
        condition.broadcast()
        condition.unlock()
    }
}
