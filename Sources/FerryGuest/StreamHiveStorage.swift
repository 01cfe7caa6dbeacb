import FerryNTFS
import FerryRegistry
import FerryBinary
import Synchronization

/// Serves a hive straight out of an NTFS file, in 4 KiB pages cached on first touch, so a
/// lookup in a 60 MiB SOFTWARE hive reads only the pages its cells live in.
final class StreamHiveStorage: HiveStorage {
    static let pageSize = 4096
    /// Cached pages before the cache is dropped (64 MiB would break the read budget anyway).
    static let maxCachedPages = 4096

    let stream: NTFSStream
    private let pages = Mutex<[UInt64: [UInt8]]>([:])

    init(stream: NTFSStream) { self.stream = stream }

    var size: UInt64 { stream.size }

    func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw FormatError(.outOfRange, structure: "regf file", offset: offset, "\(count) bytes run past the end of the \(size)-byte hive")
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var position = offset
        let end = offset + UInt64(count)
        while position < end {
            let page = position / UInt64(Self.pageSize)
            let bytes = try self.page(page)
            let within = Int(position - page * UInt64(Self.pageSize))
            let n = min(bytes.count - within, Int(end - position))
            guard n > 0 else { break }
            out += bytes[within..<within + n]
            position += UInt64(n)
        }
        return out
    }

    private func page(_ number: UInt64) throws -> [UInt8] {
        if let cached = pages.withLock({ $0[number] }) { return cached }
        let start = number * UInt64(Self.pageSize)
        let bytes = try stream.read(at: start, count: Int(min(UInt64(Self.pageSize), size - start)))
        pages.withLock {
            if $0.count >= Self.maxCachedPages { $0.removeAll() }
            $0[number] = bytes
        }
        return bytes
    }
}
