import FerryBinary
import Synchronization

extension VHD {
    /// Guest-to-host translation for fixed, dynamic and differencing VHDs.
    final class Mapper: DiskMapper {
        let file: HostFile
        let virtualSize: UInt64
        let type: DiskType
        let bat: [UInt32]
        /// Where the BAT sits in the file, for error messages.
        let batOffset: UInt64
        let blockSize: UInt64
        /// Bytes of sector bitmap before each block's data (rounded up to a sector).
        let bitmapBytes: UInt64
        private let bitmaps: Mutex<TableCache<[UInt8]>>

        init(file: HostFile, virtualSize: UInt64, type: DiskType, bat: [UInt32], batOffset: UInt64 = 0, blockSize: UInt64) {
            self.batOffset = batOffset
            self.file = file
            self.virtualSize = virtualSize
            self.type = type
            self.bat = bat
            self.blockSize = blockSize
            let bits = blockSize / 512
            bitmapBytes = ((bits / 8 + 511) / 512) * 512
            bitmaps = Mutex(TableCache(tableBytes: Int(max(bitmapBytes, 512))))
        }

        func run(at offset: UInt64, limit: UInt64) throws -> MappedRun {
            if type == .fixed { return MappedRun(length: limit, source: .data(file, HostOffset(offset))) }
            var block = offset / blockSize
            let within = offset % blockSize
            guard block < UInt64(bat.count), bat[Int(block)] != VHD.unallocated else {
                // Extend over following unallocated blocks.
                var length = blockSize - within
                block += 1
                while length < limit, block < UInt64(bat.count), bat[Int(block)] == VHD.unallocated {
                    length += blockSize
                    block += 1
                }
                if block >= UInt64(bat.count) { length = limit }
                return MappedRun(length: min(length, limit), source: .hole)
            }
            let start = UInt64(bat[Int(block)]) * 512
            let dataStart = start + bitmapBytes
            guard dataStart < file.size else {
                throw file.error(.outOfRange, "VHD block allocation table", field: "entry \(block)", at: batOffset + block * 4,
                                 "block at sector \(bat[Int(block)]) lies past the end of the \(file.size)-byte file")
            }
            let rest = min(limit, blockSize - within)
            guard type == .differencing else {
                return MappedRun(length: rest, source: .data(file, HostOffset(dataStart + within)))
            }
            // Differencing: the sector bitmap (MSB first) says which sectors live here.
            let bitmap = try bitmaps.table(HostOffset(start)) {
                try file.bytes(at: HostOffset(start), count: Int(bitmapBytes), "VHD sector bitmap")
            }
            func present(_ sector: UInt64) -> Bool { bitmap[Int(sector / 8)] & (0x80 >> UInt8(sector % 8)) != 0 }
            let first = within / 512
            var sector = first + 1
            while (sector * 512 - within) < rest, present(sector) == present(first) { sector += 1 }
            let length = min(rest, sector * 512 - within)
            return MappedRun(length: length, source: present(first) ? .data(file, HostOffset(dataStart + within)) : .hole)
        }
    }
}
