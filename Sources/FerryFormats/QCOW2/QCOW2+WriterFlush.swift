import FerryBinary
import FerryDisk

extension QCOW2.Writer {
    /// Writes all metadata and fsyncs. Holds the state lock throughout: writes
    /// must not race with a flush (the copy engine flushes after its writes).
    func flush() throws {
        typealias Layout = QCOW2.Layout
        let cluster = Layout.clusterSize
        try withState { s in
            // Refcount blocks cover themselves: allocate until the count settles.
            while UInt64(s.refcountBlocks.count) < Layout.ceil(s.frontier, Layout.refcountsPerBlock) {
                s.refcountBlocks.append(s.frontier * cluster)
                s.frontier += 1
            }
            for index in s.dirty.sorted() {
                guard let table = s.l2[index], let host = s.l2Host[index] else { continue }
                try write(Self.bigEndian(table), at: host)
            }
            s.dirty.removeAll()
            var l1 = [UInt64](repeating: 0, count: Int(layout.l1Entries))
            for (index, host) in s.l2Host { l1[index] = host | QCOW2.copiedFlag }
            try write(Self.bigEndian(l1), at: layout.l1Offset)
            try write(Self.bigEndian(s.refcountBlocks), at: layout.refcountTableOffset)
            // Every cluster below the frontier is in use exactly once.
            let firstBlock = Int(s.refcounted / Layout.refcountsPerBlock)
            for block in firstBlock..<s.refcountBlocks.count {
                var w = ByteWriter(capacity: Int(cluster))
                let base = UInt64(block) * Layout.refcountsPerBlock
                for i in 0..<Layout.refcountsPerBlock { w.writeBigEndian(UInt16(base + i < s.frontier ? 1 : 0)) }
                try write(w.bytes, at: s.refcountBlocks[block])
            }
            s.refcounted = s.frontier
            try write(layout.headerBytes(), at: 0)
            // A data cluster written only in part may end the file early; qcow2
            // expects every referenced cluster to lie inside the file.
            let end = s.frontier * cluster
            if s.fileEnd < end {
                try write([0], at: end - 1)
                s.fileEnd = end
            }
            try target.flush()
        }
    }

    private func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try target.write($0, at: offset) }
    }

    static func bigEndian(_ words: [UInt64]) -> [UInt8] {
        var w = ByteWriter(capacity: words.count * 8)
        for word in words { w.writeBigEndian(word) }
        return w.bytes
    }
}
