import FerryBinary
import FerryDisk
import Synchronization

extension VHDX {
    /// The metadata log ([MS-VHDX] 2.3): a circular buffer of entries, each
    ///
    /// ```
    ///  [ header 64: "loge", CRC-32C, entry length, tail, u64 sequence, descriptor count,
    ///    reserved, log GUID, flushed file offset, last file offset ]
    ///  [ descriptors, 32 bytes: "zero" {reserved, u64 length, u64 file offset, u64 seq}
    ///                           "desc" {u32 trailing, u64 leading, u64 file offset, u64 seq} ]
    ///  (padded to 4 KiB) then one 4 KiB data sector per "desc":
    ///  [ "data", u32 sequence high, 4084 bytes, u32 sequence low ]
    ///  page written = leading (8) + data (4084) + trailing (4)
    /// ```
    /// Replay = apply, in order, the entries of the active sequence: the run of valid
    /// entries with consecutive sequence numbers ending at the highest one, starting at
    /// that last entry's tail. ferry replays into an in-memory overlay and never writes.
    enum Log {
        static let structure = "VHDX log entry"
        static let sector: UInt64 = 4096
        /// Most bytes the overlay may hold (a log is at most a few MiB of pages).
        static let maxOverlayBytes: UInt64 = 256 << 20
        /// Largest log read (Hyper-V and qemu write 1 MiB logs).
        static let maxLogBytes: UInt64 = 64 << 20
        /// Checksum work allowed while searching, in multiples of the log size, so a
        /// log full of fake headers claiming huge entries cannot make the search hang.
        static let searchBudgetFactor: UInt64 = 8

        struct Entry {
            let position: UInt64
            let length: UInt64
            let tail: UInt64
            let sequence: UInt64
            let lastFileOffset: UInt64
            /// Pages (file offset, 4 KiB) and zeroed ranges (file offset, length), in order.
            var writes: [(offset: UInt64, page: [UInt8]?, zeroLength: UInt64)]
        }

        /// Replays the log of `header` and returns the file seen through the result.
        static func replay(_ file: HostFile, header: Header) throws -> HostFile {
            let length = UInt64(header.logLength)
            guard length >= sector, length % sector == 0, length <= maxLogBytes else {
                throw file.error(.outOfRange, headerStructure, field: "log length", at: header.offset + 68,
                                 "log length \(length) is not a positive multiple of 4 KiB up to \(maxLogBytes) bytes")
            }
            try file.checkInside(HostOffset(header.logOffset), length, headerStructure, field: "log offset")
            let log = try file.bytes(at: HostOffset(header.logOffset), count: Int(length), "VHDX log")
            var entries: [UInt64: Entry] = [:]
            var budget = length * searchBudgetFactor
            for position in stride(from: UInt64(0), to: length, by: Int(sector)) {
                if let entry = parse(log, at: position, guid: header.logGUID, budget: &budget) { entries[position] = entry }
                guard budget > 0 else {
                    throw file.error(.limitExceeded, structure, at: header.offset + position,
                                     "the log holds too many overlapping entry headers to search")
                }
            }
            guard let active = try activeSequence(entries, logLength: length, file: file, header: header) else {
                return file  // no valid entry: nothing to replay
            }
            let last = active[active.count - 1]
            let overlay = OverlayDevice(file.device, size: max(file.size, last.lastFileOffset), name: file.path)
            var total: UInt64 = 0
            for entry in active {
                for write in entry.writes {
                    total += write.page.map { UInt64($0.count) } ?? write.zeroLength
                    guard total <= maxOverlayBytes else {
                        throw file.error(.limitExceeded, structure, at: header.logOffset + entry.position,
                                         "replaying the log would change more than \(maxOverlayBytes) bytes")
                    }
                    if let page = write.page { overlay.store(page, at: write.offset) } else { overlay.zero(write.offset, write.zeroLength) }
                }
            }
            return HostFile(path: file.path, device: overlay)
        }

        /// The active sequence ([MS-VHDX] 2.3.3): the entry with the highest sequence
        /// number and the run from that entry's tail to it, through entries whose
        /// sequence numbers rise by one. Nil when the log holds no valid entry.
        ///
        /// Decided by the newest entry alone, never by the order a dictionary yields its
        /// entries: the old search took the first chain it met among the several that
        /// end at the newest entry (one per start after the tail), so whether it began
        /// at the tail, and the image opened, depended on the process's hash seed.
        static func activeSequence(
            _ entries: [UInt64: Entry], logLength: UInt64, file: HostFile, header: Header
        ) throws -> [Entry]? {
            // Newest first; a tie (two valid entries claiming one sequence number) is
            // damage the writer cannot produce, so it is refused rather than guessed.
            let newestFirst = entries.values.sorted { ($0.sequence, $0.position) > ($1.sequence, $1.position) }
            guard let last = newestFirst.first else { return nil }
            if newestFirst.count > 1, newestFirst[1].sequence == last.sequence {
                throw file.error(.inconsistent, structure, field: "sequence number", at: header.logOffset + newestFirst[1].position + 16,
                                 "two log entries (at log offsets \(newestFirst[1].position) and \(last.position)) claim sequence number \(last.sequence)")
            }
            var sequence: [Entry] = []
            var position = last.tail
            while let entry = entries[position], sequence.count < entries.count,
                  sequence.last.map({ $0.sequence &+ 1 == entry.sequence }) ?? true
            {
                sequence.append(entry)
                if entry.position == last.position { return sequence }
                position = (entry.position + entry.length) % logLength
            }
            throw file.error(.inconsistent, structure, field: "tail", at: header.logOffset + last.position + 12,
                             "the newest log entry's tail (\(last.tail)) is not the start of its sequence")
        }

        /// A valid entry at `position` (wrapping around the log), or nil.
        static func parse(_ log: [UInt8], at position: UInt64, guid: [UInt8], budget: inout UInt64) -> Entry? {
            let size = UInt64(log.count)
            func bytes(_ offset: UInt64, _ count: Int) -> [UInt8] {
                (0..<UInt64(count)).map { log[Int((position + offset + $0) % size)] }
            }
            let head = bytes(0, 64)
            guard head.starts(with: Array("loge".utf8)),
                  let length = head.littleEndian(UInt32.self, at: 8).map(UInt64.init), length >= sector, length % sector == 0, length <= size,
                  let tail = head.littleEndian(UInt32.self, at: 12).map(UInt64.init), tail % sector == 0, tail < size,
                  let sequence = head.littleEndian(UInt64.self, at: 16),
                  let count = head.littleEndian(UInt32.self, at: 24).map(UInt64.init),
                  Array(head[32..<48]) == guid,
                  let lastFileOffset = head.littleEndian(UInt64.self, at: 56)
            else { return nil }
            guard budget >= length else {
                budget = 0
                return nil
            }
            budget -= length
            let whole = bytes(0, Int(length))
            guard head.littleEndian(UInt32.self, at: 4) == VHDX.crc32c(whole, zeroing: 4) else { return nil }
            let descriptorSectors = (64 + count * 32 + sector - 1) / sector
            guard descriptorSectors <= length / sector else { return nil }
            var writes: [(offset: UInt64, page: [UInt8]?, zeroLength: UInt64)] = []
            var dataSector = descriptorSectors
            for i in 0..<Int(count) {
                let d = Array(whole[64 + i * 32..<96 + i * 32])
                guard let fileOffset = d.littleEndian(UInt64.self, at: 16), fileOffset % sector == 0,
                      d.littleEndian(UInt64.self, at: 24) == sequence else { return nil }
                if d.starts(with: Array("zero".utf8)) {
                    guard let zeroLength = d.littleEndian(UInt64.self, at: 8), zeroLength % sector == 0 else { return nil }
                    writes.append((fileOffset, nil, zeroLength))
                } else if d.starts(with: Array("desc".utf8)) {
                    guard (dataSector + 1) * sector <= length else { return nil }
                    let data = Array(whole[Int(dataSector * sector)..<Int((dataSector + 1) * sector)])
                    guard data.starts(with: Array("data".utf8)),
                          data.littleEndian(UInt32.self, at: 4) == UInt32(truncatingIfNeeded: sequence >> 32),
                          data.littleEndian(UInt32.self, at: 4092) == UInt32(truncatingIfNeeded: sequence) else { return nil }
                    let page = Array(d[8..<16]) + Array(data[8..<4092]) + Array(d[4..<8])
                    writes.append((fileOffset, page, 0))
                    dataSector += 1
                } else {
                    return nil
                }
            }
            return Entry(position: position, length: length, tail: tail, sequence: sequence,
                         lastFileOffset: lastFileOffset, writes: writes)
        }
    }
}
