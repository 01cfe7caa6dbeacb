import FerryBinary

/// The hive-bins area of a hive held in memory, with a cell allocator (Suhanov §Hive bin, §Cell).
///
/// Built by walking every hbin and every cell: a bin's cells must tile it exactly (a size
/// field that is zero, unaligned or runs past the bin is refused), so every cell start is
/// known. References taken from records are accepted only when they name one of those
/// starts, which is the check hivex makes (`IS_VALID_BLOCK`) before following an offset.
///
/// Allocation is first fit, lowest offset first, over the free cells (positive size fields);
/// a larger free cell is split, the remainder stays free. When nothing fits, a new hbin is
/// appended after the last one (the file grows; hivex's `allocate_page` does the same). Freed
/// cells are merged with free neighbours in the same bin.
struct CellAllocator: Sendable {
    struct FreeCell: Sendable, Equatable {
        var offset: UInt32
        var size: UInt32
    }

    /// A hive larger than this is refused (cell offsets are u32; Windows caps hives at 2 GiB).
    static let maxBinsSize: UInt32 = 0x7FFF_0000

    /// The whole hive file: base block, bins, and any slack after them.
    private(set) var bytes: [UInt8]
    /// Bytes of hive bins (base block field @40).
    private(set) var binsSize: UInt32
    /// Starts of the allocated cells.
    private(set) var allocated: Set<UInt32> = []
    /// Free cells sorted by offset.
    private(set) var free: [FreeCell] = []
    /// Starts of the hbins, ascending.
    private(set) var binStarts: [UInt32] = []

    init(bytes: [UInt8], binsSize: UInt32) throws {
        self.bytes = bytes
        self.binsSize = binsSize
        guard binsSize >= 4096, binsSize <= Self.maxBinsSize, UInt64(binsSize) + 4096 <= UInt64(bytes.count) else {
            throw FormatError(.outOfRange, structure: "regf base block", field: "hive bins data size", offset: 40,
                "\(binsSize) bytes of hive bins do not fit in the \(bytes.count)-byte file")
        }
        var position: UInt32 = 0
        while position < binsSize {
            let fileOffset = UInt64(position) + 4096
            let header = try HiveBinHeader(parsing: Array(bytes[Int(fileOffset)..<Int(fileOffset) + HiveBinHeader.size]), fileOffset: fileOffset)
            guard header.offset == position else {
                throw FormatError(.inconsistent, structure: "hbin header", field: "offset", offset: fileOffset + 4,
                    "the bin at \(position) says it is at \(header.offset)")
            }
            guard header.binSize <= binsSize - position else {
                throw FormatError(.outOfRange, structure: "hbin header", field: "size", offset: fileOffset + 8,
                    "a \(header.binSize)-byte bin at \(position) runs past the \(binsSize)-byte hive bins")
            }
            binStarts.append(position)
            try walkCells(bin: position, end: position + header.binSize)
            position += header.binSize
        }
    }

    private mutating func walkCells(bin: UInt32, end: UInt32) throws {
        var cell = bin + UInt32(HiveBinHeader.size)
        while cell < end {
            let raw = Int32(bitPattern: u32(atCell: cell))
            let size = raw.magnitude
            guard size >= 8, size % 8 == 0, size <= end - cell else {
                throw FormatError(.inconsistent, structure: "cell", field: "size", offset: UInt64(cell) + 4096,
                    "a cell size of \(raw) at \(cell) does not fit the bin \(bin)…\(end)")
            }
            if raw < 0 {
                allocated.insert(cell)
            } else {
                free.append(FreeCell(offset: cell, size: size))
            }
            cell += size
        }
    }

    private func u32(atCell offset: UInt32) -> UInt32 { bytes.littleEndian(UInt32.self, at: Int(offset) + 4096) ?? 0 }

    private mutating func setU32(_ value: UInt32, atCell offset: UInt32) {
        let at = Int(offset) + 4096
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    // MARK: Reading

    func isAllocated(_ index: CellIndex) -> Bool { allocated.contains(index.value) }

    /// Bytes of data the allocated cell holds (its size less the size field).
    func capacity(_ index: CellIndex) -> Int { Int(Int32(bitPattern: u32(atCell: index.value)).magnitude) - 4 }

    /// The data of the allocated cell at `index`; throws when `index` is not an allocated cell start.
    func data(_ index: CellIndex, _ what: String) throws -> [UInt8] {
        guard isAllocated(index) else {
            throw FormatError(.outOfRange, structure: what, field: "cell offset", offset: index.isNone ? nil : index.fileOffset,
                "\(index.isNone ? "no cell (0xFFFFFFFF)" : "offset \(index.value)") is not an allocated cell")
        }
        let start = Int(index.dataFileOffset)
        return Array(bytes[start..<start + capacity(index)])
    }

    // MARK: Writing

    /// Writes `record` at the start of the allocated cell's data (the rest of the cell is kept).
    mutating func write(_ record: [UInt8], at index: CellIndex) throws {
        guard isAllocated(index), record.count <= capacity(index) else {
            throw FormatError(.inconsistent, structure: "cell", offset: index.fileOffset,
                "a \(record.count)-byte record does not fit the cell at \(index.value)")
        }
        let start = Int(index.dataFileOffset)
        bytes.replaceSubrange(start..<start + record.count, with: record)
    }

    /// A new cell holding `record` (zero-filled after it).
    mutating func store(_ record: [UInt8]) throws -> CellIndex {
        let index = try allocate(record.count)
        try write(record, at: index)
        return index
    }

    /// Writes `record` in place of the cell `old` when it fits there, else into a new cell
    /// (freeing `old`); returns where the record now is.
    mutating func replace(_ old: CellIndex?, with record: [UInt8]) throws -> CellIndex {
        if let old, isAllocated(old), capacity(old) >= record.count {
            try write(record, at: old)
            return old
        }
        let stored = try store(record)
        if let old { release(old) }
        return stored
    }

    /// A new zero-filled cell with room for `payload` bytes.
    mutating func allocate(_ payload: Int) throws -> CellIndex {
        guard payload >= 0, payload <= Int(Self.maxBinsSize) / 2 else {
            throw FormatError(.limitExceeded, structure: "cell", "a \(payload)-byte cell is too large")
        }
        let need = UInt32((payload + 4 + 7) & ~7)
        if free.firstIndex(where: { $0.size >= need }) == nil { try appendBin(room: need) }
        guard let slot = free.firstIndex(where: { $0.size >= need }) else {
            throw FormatError(.limitExceeded, structure: "cell", "no room for a \(need)-byte cell")
        }
        let cell = free[slot]
        if cell.size > need {
            free[slot] = FreeCell(offset: cell.offset + need, size: cell.size - need)
            setU32(cell.size - need, atCell: cell.offset + need)
        } else {
            free.remove(at: slot)
        }
        setU32(UInt32(bitPattern: -Int32(need)), atCell: cell.offset)
        let start = Int(cell.offset) + 4096 + 4
        bytes.replaceSubrange(start..<start + Int(need) - 4, with: repeatElement(0, count: Int(need) - 4))
        allocated.insert(cell.offset)
        return CellIndex(cell.offset)
    }

    /// Marks an allocated cell free and merges it with free neighbours (cells never cross a bin,
    /// and a bin starts with its header, so adjacent free cells are always in the same bin).
    mutating func release(_ index: CellIndex) {
        guard allocated.remove(index.value) != nil else { return }
        var cell = FreeCell(offset: index.value, size: UInt32(capacity(index) + 4))
        var slot = insertionPoint(cell.offset)
        if slot < free.count, free[slot].offset == cell.offset + cell.size, !isBinStart(free[slot].offset) {
            cell.size += free[slot].size
            free.remove(at: slot)
        }
        if slot > 0, free[slot - 1].offset + free[slot - 1].size == cell.offset, !isBinStart(cell.offset) {
            slot -= 1
            cell = FreeCell(offset: free[slot].offset, size: free[slot].size + cell.size)
            free.remove(at: slot)
        }
        free.insert(cell, at: slot)
        setU32(cell.size, atCell: cell.offset)
    }

    private func isBinStart(_ offset: UInt32) -> Bool {
        var lo = 0, hi = binStarts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if binStarts[mid] < offset { lo = mid + 1 } else { hi = mid }
        }
        return lo < binStarts.count && binStarts[lo] == offset
    }

    private func insertionPoint(_ offset: UInt32) -> Int {
        var lo = 0, hi = free.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if free[mid].offset < offset { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Appends an hbin of 4 KiB multiples with room for a `need`-byte cell, over any slack
    /// after the last bin first, then growing the file.
    private mutating func appendBin(room need: UInt32) throws {
        let binSize = max(4096, (need + UInt32(HiveBinHeader.size) + 4095) & ~4095)
        guard binSize <= Self.maxBinsSize - binsSize else {
            throw FormatError(.limitExceeded, structure: "hive bins", "growing past \(Self.maxBinsSize) bytes")
        }
        let start = binsSize
        let fileStart = Int(start) + 4096
        let fileEnd = fileStart + Int(binSize)
        if bytes.count < fileEnd { bytes += [UInt8](repeating: 0, count: fileEnd - bytes.count) }
        bytes.replaceSubrange(fileStart..<fileEnd, with: repeatElement(0, count: Int(binSize)))
        var header = ByteWriter(capacity: HiveBinHeader.size)
        HiveBinHeader(offset: start, binSize: binSize).write(to: &header)
        bytes.replaceSubrange(fileStart..<fileStart + HiveBinHeader.size, with: header.bytes)
        let cell = start + UInt32(HiveBinHeader.size)
        setU32(binSize - UInt32(HiveBinHeader.size), atCell: cell)
        free.append(FreeCell(offset: cell, size: binSize - UInt32(HiveBinHeader.size)))
        binStarts.append(start)
        binsSize += binSize
    }

    /// Writes the bytes of the base block.
    mutating func setBaseBlock(_ block: [UInt8]) { bytes.replaceSubrange(0..<BaseBlock.size, with: block) }
}
