import FerryDisk
import FerryBinary
import Synchronization

/// A read-only virtual disk assembled from a `DiskMapper`: the `BlockDevice` every
/// image reader returns.
///
/// Reads walk the mapper's runs: contiguous data becomes one positional read,
/// holes come from the backing disk (or zeros), zero runs are filled in memory,
/// compressed units are inflated once and kept in a small cache. Extents come from
/// the same runs, so unallocated ranges are never read by the copy engine.
final class MappedDisk: BlockDevice {
    let name: String
    let size: UInt64
    let logicalSectorSize: Int
    let capabilities: DiskCapabilities = [.randomAccess, .extents]
    let mapper: any DiskMapper
    /// The disk that holes fall through to (qcow2 backing file, VMDK parent).
    let backing: (any BlockDevice)?
    /// Files to keep open as long as this disk lives.
    let files: [HostFile]
    private let inflated = Mutex(InflatedCache())

    init(
        name: String, mapper: any DiskMapper, backing: (any BlockDevice)?, files: [HostFile],
        logicalSectorSize: Int = 512
    ) {
        self.name = name
        self.size = mapper.virtualSize
        self.mapper = mapper
        self.backing = backing
        self.files = files
        self.logicalSectorSize = logicalSectorSize
    }

    /// The next run, checked to make progress and stay inside the request.
    private func nextRun(at offset: UInt64, limit: UInt64) throws -> MappedRun {
        let run = try mapper.run(at: offset, limit: limit)
        guard run.length >= 1, run.length <= limit else {
            throw FormatError(
                .inconsistent, structure: "image map", offset: offset, file: name,
                "internal mapping returned a run of \(run.length) bytes for a request of \(limit)")
        }
        return run
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let run = try nextRun(at: position, limit: UInt64(buffer.count - done))
            let count = Int(run.length)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + count])
            switch run.source {
            case .zero:
                target.initializeMemory(as: UInt8.self, repeating: 0)
            case .hole:
                try readBacking(into: target, at: position)
            case .data(let file, let host):
                try readData(file, host, into: target)
            case .compressed(let unit, let within):
                let bytes = try unitBytes(unit)
                guard within >= 0, within + count <= bytes.count else {
                    throw FormatError(
                        .inconsistent, structure: "compressed unit", offset: unit.offset.bytes, file: unit.file.path,
                        "run of \(count) bytes at \(within) exceeds the \(bytes.count)-byte unit")
                }
                bytes.withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[within..<within + count])) }
            }
            done += count
        }
    }

    /// Reads mapped data. A run that starts inside the file but ends past its end (a
    /// last cluster or grain cut short) reads zeros beyond the end, as qemu does; a run
    /// starting past the end is corruption (mappers reject those entries first).
    private func readData(_ file: HostFile, _ host: HostOffset, into target: UnsafeMutableRawBufferPointer) throws {
        guard host.bytes < file.size else {
            throw file.error(.outOfRange, "data", at: host.bytes, "mapped data starts past the end of the \(file.size)-byte file")
        }
        let inside = Int(min(UInt64(target.count), file.size - host.bytes))
        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: target[0..<inside]), at: host, "data")
        if inside < target.count {
            UnsafeMutableRawBufferPointer(rebasing: target[inside...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// Reads a hole: from the backing disk where it reaches, zeros beyond it.
    private func readBacking(into target: UnsafeMutableRawBufferPointer, at position: UInt64) throws {
        guard let backing, position < backing.size else {
            target.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let inside = Int(min(UInt64(target.count), backing.size - position))
        try backing.read(into: UnsafeMutableRawBufferPointer(rebasing: target[0..<inside]), at: position)
        if inside < target.count {
            UnsafeMutableRawBufferPointer(rebasing: target[inside...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    private func unitBytes(_ unit: CompressedUnit) throws -> [UInt8] {
        let key = unit.cacheKey
        if let hit = inflated.withLock({ $0.lookup(key) }) { return hit }
        let bytes = try mapper.decompress(unit)
        guard bytes.count == unit.unitSize else {
            throw FormatError(
                .inconsistent, structure: "compressed unit", offset: unit.offset.bytes, file: unit.file.path,
                "inflated to \(bytes.count) bytes, expected \(unit.unitSize)")
        }
        inflated.withLock { $0.insert(key, bytes) }
        return bytes
    }

    func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        try checkRange(offset, length, operation: "extents")
        var result: [Extent] = []
        func append(_ start: UInt64, _ count: UInt64, _ kind: ExtentKind) { result.appendMerging(start, count, kind) }
        var position = offset
        let end = offset + length
        while position < end {
            let run = try nextRun(at: position, limit: end - position)
            switch run.source {
            case .zero: append(position, run.length, .zero)
            case .data, .compressed: append(position, run.length, .data)
            case .hole:
                if let backing, position < backing.size {
                    let inside = min(run.length, backing.size - position)
                    for e in try backing.extents(at: position, length: inside) { append(e.offset, e.length, e.kind) }
                    append(position + inside, run.length - inside, .hole)
                } else {
                    append(position, run.length, .hole)
                }
            }
            position += run.length
        }
        return result
    }

    func close() throws {
        try backing?.close()
    }
}

/// A few recently inflated units, for reads that cross one compressed cluster piecewise.
private struct InflatedCache {
    private var entries: [(key: CompressedUnit.CacheKey, bytes: [UInt8])] = []

    func lookup(_ key: CompressedUnit.CacheKey) -> [UInt8]? {
        entries.first(where: { $0.key == key })?.bytes
    }

    mutating func insert(_ key: CompressedUnit.CacheKey, _ bytes: [UInt8]) {
        if entries.contains(where: { $0.key == key }) { return }
        if entries.count >= FormatLimits.compressedCacheEntries { entries.removeFirst() }
        entries.append((key, bytes))
    }
}

/// A bounded least-recently-used cache of decoded tables (qcow2 L2, VMDK GT),
/// keyed by their host offset. Callers hold it inside a `Mutex`.
struct TableCache<Table: Sendable>: Sendable {
    private var tables: [HostOffset: (table: Table, tick: UInt64)] = [:]
    private var tick: UInt64 = 0
    private let capacity: Int

    /// `tableBytes` is the size of one table; the cache keeps `budget / tableBytes` of them.
    init(tableBytes: Int, budget: Int = FormatLimits.tableCacheBytes) {
        capacity = max(4, budget / max(1, tableBytes))
    }

    mutating func lookup(_ offset: HostOffset) -> Table? {
        guard let hit = tables[offset] else { return nil }
        tick += 1
        tables[offset] = (hit.table, tick)
        return hit.table
    }

    mutating func insert(_ offset: HostOffset, _ table: Table) {
        if tables[offset] == nil, tables.count >= capacity,
            let oldest = tables.min(by: { $0.value.tick < $1.value.tick })?.key
        {
            tables[oldest] = nil
        }
        tick += 1
        tables[offset] = (table, tick)
    }
}

extension Mutex {
    /// A table from the cache, or loaded (outside the lock, so slow I/O does not
    /// serialise readers) and inserted. Two threads may load the same table once each.
    func table<Table: Sendable>(_ key: HostOffset, load: () throws -> Table) throws -> Table
    where Value == TableCache<Table> {
        if let hit = withLock({ $0.lookup(key) }) { return hit }
        let table = try load()
        withLock { $0.insert(key, table) }
        return table
    }
}

extension Array where Element == Extent {
    /// Appends a run, merging it into the last extent when kinds match and they touch.
    mutating func appendMerging(_ start: UInt64, _ count: UInt64, _ kind: ExtentKind) {
        guard count > 0 else { return }
        if let last, last.kind == kind, last.end == start {
            self[self.count - 1].length += count
        } else {
            append(Extent(offset: start, length: count, kind: kind))
        }
    }
}
