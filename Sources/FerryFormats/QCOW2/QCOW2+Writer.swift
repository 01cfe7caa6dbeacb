import CFerryShims
import FerryBinary
import FerryDisk
import Synchronization

extension QCOW2 {
    /// Writes a qcow2 v3 image onto an empty file as a `BlockDevice` of the virtual
    /// size. Positional writes may arrive out of order and from several threads;
    /// clusters are allocated on first non-zero write, all-zero writes to unallocated
    /// clusters allocate nothing, and `flush()` writes L2 tables, L1, refcounts and
    /// the header, then fsyncs, so the file is a complete image after every flush.
    final class Writer: BlockDevice {
        let name: String
        let size: UInt64
        let logicalSectorSize = 512
        let capabilities: DiskCapabilities = [.randomAccess, .writable, .extents]
        let target: any BlockDevice
        let layout: Layout
        private let state: Mutex<State>
        private static let cluster = Layout.clusterSize

        struct State: Sendable {
            var frontier: UInt64
            /// Decoded L2 tables by L1 index, and the host offset of each.
            var l2: [Int: [UInt64]] = [:]
            var l2Host: [Int: UInt64] = [:]
            var dirty: Set<Int> = []
            var refcountBlocks: [UInt64] = []
            /// Clusters below this had their refcounts written by an earlier flush.
            var refcounted: UInt64 = 0
            /// End of the furthest byte written, so flush can extend a short last cluster.
            var fileEnd: UInt64 = 0
        }

        init(target: any BlockDevice, virtualSize: UInt64) throws {
            name = target.name
            size = virtualSize
            self.target = target
            layout = try Layout(virtualSize: virtualSize, target: target.name)
            state = Mutex(State(frontier: layout.firstFreeCluster))
        }

        /// One cluster-sized slice of a request.
        private struct Piece {
            var l1: Int, l2: Int, within: UInt64, count: Int, bufferOffset: Int
        }

        private func pieces(_ offset: UInt64, _ count: Int) -> [Piece] {
            var result: [Piece] = []
            var done = 0
            while done < count {
                let position = offset + UInt64(done)
                let clusterIndex = position / Self.cluster
                let within = position % Self.cluster
                let n = Int(min(Self.cluster - within, UInt64(count - done)))
                result.append(Piece(l1: Int(clusterIndex / Layout.l2Entries), l2: Int(clusterIndex % Layout.l2Entries),
                                    within: within, count: n, bufferOffset: done))
                done += n
            }
            return result
        }

        /// Runs `body` with the state locked (for `flush()`).
        func withState<R>(_ body: (inout State) throws -> R) throws -> R {
            try state.withLock { try body(&$0) }
        }

        private func entry(_ s: State, _ p: Piece) -> UInt64 { s.l2[p.l1]?[p.l2] ?? 0 }

        private static func allocate(_ s: inout State) -> UInt64 {
            defer { s.frontier += 1 }
            return s.frontier * cluster
        }

        func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
            try checkRange(offset, UInt64(buffer.count), operation: "write")
            var writes: [(host: UInt64, range: Range<Int>)] = []
            for p in pieces(offset, buffer.count) {
                let slice = UnsafeRawBufferPointer(rebasing: buffer[p.bufferOffset..<p.bufferOffset + p.count])
                let zero = ferry_is_zero(slice.baseAddress, slice.count) != 0
                let host: UInt64? = try state.withLock { s in
                    let e = entry(s, p)
                    let existing = e & QCOW2.offsetMask
                    if existing != 0 && e & QCOW2.zeroFlag == 0 { return existing }
                    if zero { return nil }  // the cluster already reads as zeros
                    if existing != 0 {
                        // A preallocated zero cluster becomes data: clear its old bytes first,
                        // under the lock so a concurrent write to its other half waits.
                        try target.writeZeros(at: existing, length: Self.cluster, mayDiscard: true)
                        setEntry(&s, p, existing | QCOW2.copiedFlag)
                        return existing
                    }
                    let fresh = Self.allocate(&s)
                    setEntry(&s, p, fresh | QCOW2.copiedFlag)
                    return fresh
                }
                guard let host else { continue }
                let at = host + p.within
                let range = p.bufferOffset..<p.bufferOffset + p.count
                if let last = writes.last, last.host + UInt64(last.range.count) == at, last.range.upperBound == range.lowerBound {
                    writes[writes.count - 1].range = last.range.lowerBound..<range.upperBound
                } else {
                    writes.append((at, range))
                }
            }
            for w in writes {
                try target.write(UnsafeRawBufferPointer(rebasing: buffer[w.range]), at: w.host)
                let end = w.host + UInt64(w.range.count)
                state.withLock { $0.fileEnd = max($0.fileEnd, end) }
            }
        }

        /// Sets an L2 entry, creating (and placing) the L2 table on first use.
        private func setEntry(_ s: inout State, _ p: Piece, _ value: UInt64) {
            if s.l2[p.l1] == nil {
                s.l2[p.l1] = [UInt64](repeating: 0, count: Int(Layout.l2Entries))
                s.l2Host[p.l1] = Self.allocate(&s)
            }
            s.l2[p.l1]?[p.l2] = value
            s.dirty.insert(p.l1)
        }

        func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
            try checkRange(offset, length, operation: "zero")
            let end = offset + length
            let tableSpan = Layout.l2Entries * Self.cluster
            var position = offset
            while position < end {
                // Work one L2 table's range at a time; a range with no table yet is
                // unallocated and already reads as zeros.
                let stop = min(end, (position / tableSpan + 1) * tableSpan)
                let hasTable = state.withLock { $0.l2[Int(position / tableSpan)] != nil }
                if hasTable {
                    for p in pieces(position, Int(stop - position)) { try zeroPiece(p, mayDiscard: mayDiscard) }
                }
                position = stop
            }
        }

        private func zeroPiece(_ p: Piece, mayDiscard: Bool) throws {
            let hostToZero: (UInt64, UInt64)? = try state.withLock { s in
                let e = entry(s, p)
                let host = e & QCOW2.offsetMask
                guard host != 0, e & QCOW2.zeroFlag == 0 else { return nil }  // already reads as zeros
                if p.count == Int(Self.cluster) {
                    // Keep the cluster allocated but flagged zero (qcow2.rst: "preallocated zero cluster").
                    setEntry(&s, p, host | QCOW2.zeroFlag | QCOW2.copiedFlag)
                    if mayDiscard { try target.writeZeros(at: host, length: Self.cluster, mayDiscard: true) }
                    return nil
                }
                return (host + p.within, UInt64(p.count))
            }
            if let (at, n) = hostToZero { try writeZeroBytes(target, at: at, length: n) }
        }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
            try checkRange(offset, UInt64(buffer.count), operation: "read")
            for p in pieces(offset, buffer.count) {
                let target = UnsafeMutableRawBufferPointer(rebasing: buffer[p.bufferOffset..<p.bufferOffset + p.count])
                let e = state.withLock { entry($0, p) }
                if e & QCOW2.offsetMask == 0 || e & QCOW2.zeroFlag != 0 {
                    target.initializeMemory(as: UInt8.self, repeating: 0)
                } else {
                    try readTarget(into: target, at: (e & QCOW2.offsetMask) + p.within)
                }
            }
        }

        /// Reads back from the target file. A `FileDevice` created empty reports size 0,
        /// so its own bounds check would refuse; read through its descriptor instead.
        private func readTarget(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
            guard let file = target as? FileDevice else { return try target.read(into: buffer, at: offset) }
            // Inside the image but past the file's end: never written, reads as zeros.
            try UpdateIO(file: file).read(into: buffer, at: HostOffset(offset))
        }

        func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
            try checkRange(offset, length, operation: "extents")
            var result: [Extent] = []
            var position = offset
            let end = offset + length
            while position < end {
                let clusterIndex = position / Self.cluster
                let stop = min((clusterIndex + 1) * Self.cluster, end)
                let e = state.withLock { $0.l2[Int(clusterIndex / Layout.l2Entries)]?[Int(clusterIndex % Layout.l2Entries)] ?? 0 }
                let kind: ExtentKind = e & QCOW2.zeroFlag != 0 ? .zero : (e & QCOW2.offsetMask == 0 ? .hole : .data)
                result.appendMerging(position, stop - position, kind)
                position = stop
            }
            return result
        }
    }
}
