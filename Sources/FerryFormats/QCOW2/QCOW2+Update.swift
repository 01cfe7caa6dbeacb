import FerryBinary
import FerryDisk
import Synchronization

extension QCOW2 {
    /// An existing qcow2 image opened for update: a writable `BlockDevice` of the
    /// virtual size, for `ferry fix` and `ferry copy --fix` (qemu's rules, qcow2.rst
    /// "Cluster mapping" and "Host cluster management"):
    ///
    /// ```
    ///  write into a guest cluster whose L2 entry is …
    ///    data, refcount 1              → in place
    ///    unallocated (0)               → new cluster at the end of the file, the rest of the
    ///                                    cluster copied from the backing file (or zeros)
    ///    zero flag (with or w/o host)  → new cluster, rest zeros; old host cluster released
    ///    data, refcount > 1 (snapshot) → new cluster, rest copied from the shared one (COW),
    ///                                    which loses one reference
    ///    compressed                    → new cluster, rest inflated from the compressed one,
    ///                                    whose host clusters lose one reference
    ///  an L1 entry that is empty gets a new L2 table; an L2 table shared with a snapshot
    ///  (refcount > 1) is copied first. New clusters, tables and entries carry COPIED.
    /// ```
    /// `flush()` writes metadata in an order in which a crash leaks clusters at worst
    /// (`qemu-img check` reports leaks, never corruption): refcount increases, then L2
    /// tables and L1, then refcount decreases, with an fsync between each phase.
    /// Writes to a backing file's overlay change the overlay only: the backing file is
    /// read (for copy-on-write) and never written.
    final class Updater: BlockDevice {
        let name: String
        let size: UInt64
        let logicalSectorSize = 512
        let capabilities: DiskCapabilities = [.randomAccess, .writable]
        let geometry: UpdateGeometry
        /// The backing chain's disk, if the image has one (read-only).
        let backing: (any BlockDevice)?
        /// The backing file's path, for messages ("writes go to the overlay").
        let backingPath: String?
        private let io: UpdateIO
        private let state: Mutex<UpdateState>

        init(io: UpdateIO, state: UpdateState, backing: (any BlockDevice)?, backingPath: String?) {
            name = io.path
            size = state.geometry.virtualSize
            geometry = state.geometry
            self.io = io
            self.backing = backing
            self.backingPath = backingPath
            self.state = Mutex(state)
        }

        private var clusterSize: UInt64 { geometry.clusterSize }

        /// Clusters appended to the file since it was opened (data, L2 tables, refcount blocks).
        var allocatedClusters: UInt64 { state.withLock { $0.allocated } }

        /// Splits `[offset, offset+count)` into per-cluster pieces: (guest cluster, offset
        /// inside it, length, offset in the caller's buffer).
        private func pieces(_ offset: UInt64, _ count: Int) -> [(cluster: UInt64, within: Int, count: Int, at: Int)] {
            var result: [(UInt64, Int, Int, Int)] = []
            var done = 0
            while done < count {
                let position = offset + UInt64(done)
                let within = position % clusterSize
                let n = Int(min(clusterSize - within, UInt64(count - done)))
                result.append((position / clusterSize, Int(within), n, done))
                done += n
            }
            return result
        }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
            try checkRange(offset, UInt64(buffer.count), operation: "read")
            try state.withLock { s in
                for p in pieces(offset, buffer.count) {
                    let target = UnsafeMutableRawBufferPointer(rebasing: buffer[p.at..<p.at + p.count])
                    let e = try s.entry(p.cluster)
                    let host = e & QCOW2.offsetMask
                    if e & QCOW2.compressedFlag == 0, e & QCOW2.zeroFlag == 0, host != 0 {
                        try io.read(into: target, at: HostOffset(host + UInt64(p.within)))
                    } else {
                        let whole = try content(of: e, cluster: p.cluster)
                        whole.withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[p.within..<p.within + p.count])) }
                    }
                }
            }
        }

        /// What guest cluster `cluster` reads as today, given its L2 entry: the bytes a
        /// copy-on-write starts from.
        private func content(of e: UInt64, cluster: UInt64) throws -> [UInt8] {
            let count = Int(clusterSize)
            if e & QCOW2.compressedFlag != 0 {
                let (offset, length) = geometry.compressedRange(e)
                guard length <= UInt64(FormatLimits.maxCompressedUnit) else {
                    throw FormatError(.limitExceeded, structure: "qcow2 compressed cluster", offset: offset.bytes, file: name,
                                      "a compressed cluster of \(length) bytes exceeds the limit")
                }
                let input = try io.bytes(at: offset, count: Int(length))
                return try geometry.codec.decompress(input, outputSize: count, structure: "qcow2 compressed cluster",
                                                     file: name, offset: offset.bytes)
            }
            if e & QCOW2.zeroFlag != 0 { return [UInt8](repeating: 0, count: count) }
            let host = e & QCOW2.offsetMask
            if host != 0 { return try io.bytes(at: HostOffset(host), count: count) }
            var bytes = [UInt8](repeating: 0, count: count)
            let guest = cluster * clusterSize
            if let backing, guest < backing.size {
                let n = Int(min(UInt64(count), backing.size - guest, size - guest))
                try bytes.withUnsafeMutableBytes { try backing.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: guest) }
            }
            return bytes
        }

        func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
            try checkRange(offset, UInt64(buffer.count), operation: "write")
            try state.withLock { s in
                for p in pieces(offset, buffer.count) {
                    let slice = UnsafeRawBufferPointer(rebasing: buffer[p.at..<p.at + p.count])
                    let e = try s.entry(p.cluster)
                    let host = e & QCOW2.offsetMask
                    let plainData = e & QCOW2.compressedFlag == 0 && e & QCOW2.zeroFlag == 0 && host != 0
                    if plainData, try s.refcount(host / clusterSize) == 1 {
                        try io.write(slice, at: HostOffset(host + UInt64(p.within)))
                        continue
                    }
                    var whole = try content(of: e, cluster: p.cluster)
                    whole.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[p.within..<p.within + p.count]).copyMemory(from: slice) }
                    let fresh = try s.allocate()
                    try io.write(whole, at: fresh)
                    try s.setEntry(p.cluster, fresh.bytes | QCOW2.copiedFlag)
                    if e & QCOW2.compressedFlag != 0 {
                        let (at, length) = geometry.compressedRange(e)
                        s.pendingFree.append((at, length))
                    } else if host != 0 {
                        s.pendingFree.append((HostOffset(host), clusterSize))
                    }
                }
            }
        }

        /// Zeros without allocating where the cluster already reads as zeros.
        func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
            try checkRange(offset, length, operation: "zero")
            var position = offset
            let end = offset + length
            while position < end {
                let stop = min(end, (position / clusterSize + 1) * clusterSize)
                let e = try state.withLock { try $0.entry(position / clusterSize) }
                let unallocated = e & QCOW2.offsetMask == 0 && e & QCOW2.compressedFlag == 0
                let readsZero = e & QCOW2.compressedFlag == 0 && (e & QCOW2.zeroFlag != 0 || (unallocated && backing == nil))
                if !readsZero { try writeZeroBytes(self, at: position, length: stop - position) }
                position = stop
            }
        }

        func flush() throws {
            try state.withLock { try $0.flush() }
        }

        func close() throws {
            try backing?.close()
            try io.file.close()
        }
    }
}
