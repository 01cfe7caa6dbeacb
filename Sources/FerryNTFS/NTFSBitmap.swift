import FerryBinary

/// The volume's cluster allocation map: the unnamed $DATA of $Bitmap (MFT record 6), one bit
/// per cluster, least significant bit first, set when the cluster is in use (formats §6.5).
///
/// ```
/// byte n, bit b  ->  cluster 8n + b      (bits past the last cluster are padding, set by mkntfs)
/// ```
struct NTFSBitmap {
    /// Bytes read per step while searching; a 2 TiB volume of 4 KiB clusters has a 64 MiB map.
    static let chunk = 1 << 16

    let stream: NTFSStream
    let totalClusters: UInt64

    init(volume: NTFSVolume) throws {
        let record = try volume.record(6)
        stream = try volume.stream(of: record, type: .data)
        totalClusters = volume.bootSector.totalClusters
        guard stream.resident == nil, stream.initializedSize == stream.dataSize, stream.dataSize >= (totalClusters + 7) / 8 else {
            throw FormatError(.inconsistent, structure: "$Bitmap", field: "data size",
                "\(stream.dataSize) bytes (\(stream.initializedSize) initialized) cannot map \(totalClusters) clusters")
        }
    }

    /// The order clusters are searched in: from `hint` (the cluster after the file's last one,
    /// so a file grows in place when it can, then into the holes behind it) to the end, then
    /// the rest of the data zone, and the MFT zone (the eighth of the volume from $MFT's first
    /// cluster, which Windows and ntfs-3g keep for the MFT to grow into) last.
    static func searchOrder(hint: UInt64, mftCluster: UInt64, totalClusters: UInt64) -> [Range<UInt64>] {
        let zoneStart = min(mftCluster, totalClusters)
        let zoneEnd = min(totalClusters, zoneStart + totalClusters / 8)
        let from = min(max(hint, zoneEnd), totalClusters)
        return [from..<totalClusters, zoneEnd..<from, 0..<zoneStart, zoneStart..<zoneEnd].filter { !$0.isEmpty }
    }

    /// First fit: the lowest-numbered free clusters of each range in turn, `count` of them, as
    /// extents (several when free space is fragmented), and the bitmap bytes read to find them.
    /// Throws when the ranges hold fewer free clusters.
    func firstFit(_ count: UInt64, in ranges: [Range<UInt64>]) throws -> (extents: [(lcn: LCN, length: UInt64)], bytesRead: UInt64) {
        var extents: [(lcn: LCN, length: UInt64)] = []
        var found: UInt64 = 0
        var bytesRead: UInt64 = 0
        for range in ranges where found < count {
            let clusters = range.clamped(to: 0..<totalClusters)
            guard !clusters.isEmpty else { continue }
            var position = clusters.lowerBound / 8
            let endByte = (clusters.upperBound + 7) / 8
            scan: while found < count, position < endByte {
                let n = Int(min(UInt64(Self.chunk), endByte - position))
                let bytes = try stream.read(at: position, count: n)
                bytesRead += UInt64(n)
                for (i, byte) in bytes.enumerated() where byte != 0xFF {
                    for bit in 0..<8 where byte & (1 << bit) == 0 {
                        let cluster = (position + UInt64(i)) * 8 + UInt64(bit)
                        guard clusters.contains(cluster) else { continue }
                        if let last = extents.last, last.lcn.value + last.length == cluster {
                            extents[extents.count - 1].length += 1
                        } else {
                            extents.append((LCN(cluster), 1))
                        }
                        found += 1
                        if found == count { break scan }
                    }
                }
                position += UInt64(n)
            }
        }
        guard found == count else {
            throw FormatError(.limitExceeded, structure: "$Bitmap", "the volume has \(found) free clusters, \(count) are needed")
        }
        return (extents, bytesRead)
    }

    /// The writes that mark `extents` in use: (disk offset, new bytes) per contiguous piece of
    /// the map. Throws if a cluster is already in use (the map changed under us).
    func markInUse(_ extents: [(lcn: LCN, length: UInt64)]) throws -> [(offset: UInt64, bytes: [UInt8])] {
        try patches(marking: extents, freeing: [])
    }

    /// The writes that leave `inUse` marked and `free` cleared, both against the map as it is
    /// now (so a second stage that frees old clusters also carries the first stage's marks).
    /// Throws if a cluster of `inUse` is in use already or one of `free` is not in use.
    func patches(marking inUse: [(lcn: LCN, length: UInt64)], freeing free: [(lcn: LCN, length: UInt64)]) throws
        -> [(offset: UInt64, bytes: [UInt8])]
    {
        // Two extents may share a byte of the map: gather every changed byte first.
        var changed: [UInt64: UInt8] = [:]
        for (extents, setting) in [(inUse, true), (free, false)] {
            for extent in extents {
                let first = extent.lcn.value, end = extent.lcn.value + extent.length
                guard extent.length > 0, end <= totalClusters else {
                    throw FormatError(.outOfRange, structure: "$Bitmap", "clusters \(first)..<\(end) are past the volume")
                }
                let firstByte = first / 8, endByte = (end + 7) / 8
                let current = try stream.read(at: firstByte, count: Int(endByte - firstByte))
                for cluster in first..<end {
                    let index = cluster / 8, mask = UInt8(1) << (cluster % 8)
                    let byte = changed[index] ?? current[Int(index - firstByte)]
                    guard (byte & mask == 0) == setting else {
                        throw FormatError(.inconsistent, structure: "$Bitmap", offset: index,
                            "cluster \(cluster) is \(setting ? "already in use" : "not in use")")
                    }
                    changed[index] = setting ? byte | mask : byte & ~mask
                }
            }
        }
        var patches: [(offset: UInt64, bytes: [UInt8])] = []
        var pending: (start: UInt64, bytes: [UInt8])?
        func flush() throws {
            guard let (start, bytes) = pending else { return }
            // The map itself may be fragmented: split the bytes at its run boundaries.
            var done = 0
            while done < bytes.count {
                let (disk, contiguous) = try stream.diskOffset(of: start + UInt64(done))
                guard let disk else { throw FormatError(.inconsistent, structure: "$Bitmap", "the map has a sparse run") }
                let n = Int(min(UInt64(bytes.count - done), contiguous))
                patches.append((disk, Array(bytes[done..<done + n])))
                done += n
            }
            pending = nil
        }
        for index in changed.keys.sorted() {
            if let p = pending, p.start + UInt64(p.bytes.count) == index {
                pending?.bytes.append(changed[index] ?? 0)
            } else {
                try flush()
                pending = (index, [changed[index] ?? 0])
            }
        }
        try flush()
        return patches
    }
}
