import FerryBinary

/// ESXi snapshot extents that no Debian tool creates, built from seeded data: seSparse
/// (allocated, zero, unmapped and unallocated grains) and COWD (vmfsSparse) redo logs. Read
/// by qemu-img as the oracle (`VMDKSnapshotTests`) and served by the vSphere simulator
/// (`ESXiReadTests`).
public enum VMDKSnapshotExtent {
    static func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// An seSparse extent over `capacity` sectors: returns the file bytes.
    public static func seSparse(capacity: UInt64, rng: inout some RandomNumberGenerator) -> [UInt8] {
        let grains = capacity / 8
        let tables = (grains + 4095) / 4096
        let gdSectors = (tables * 8 + 511) / 512
        let gtStart = 4 + gdSectors
        let grainsStart = gtStart + tables * 64 + 2
        var gts = [UInt64](repeating: 0, count: Int(tables * 4096))
        var data: [UInt8] = []
        for g in 0..<Int(grains) {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1, 2:
                let cluster = UInt64(data.count / 4096)
                gts[g] = (3 << 60) | ((cluster & 0xfff) << 48) | (cluster >> 12)
                let fill = UInt8.random(in: 1...255, using: &rng)
                data += (0..<4096).map { UInt8(truncatingIfNeeded: Int(fill) &+ $0) }
            case 3: gts[g] = 2 << 60  // zero grain
            case 4: gts[g] = 1 << 60  // unmapped
            default: break  // unallocated: the parent shows through
            }
        }
        var header = ByteWriter()
        for v: UInt64 in [0xcafe_babe, 0x2_0000_0001, capacity, 8, 64, 0, 0, 0, 0, 0,
                          1, 1, 2, 1, 3, 1, 4, gdSectors, gtStart, tables * 64, gtStart + tables * 64, 1,
                          gtStart + tables * 64 + 1, 1, grainsStart, UInt64(data.count / 512)] {
            header.writeLittleEndian(v)
        }
        header.writeZeros(512 - header.bytes.count)
        var out = header.bytes
        var volatile = ByteWriter()
        volatile.writeLittleEndian(UInt64(0xcafe_cafe))
        volatile.writeLittleEndian(UInt64(0))
        volatile.writeLittleEndian(UInt64(1))
        volatile.writeLittleEndian(UInt64(0))  // replay_journal
        volatile.writeZeros(512 - 32)
        out += volatile.bytes + [UInt8](repeating: 0, count: 1024)
        var gd = (0..<tables).flatMap { le64((0x1000_0000 << 32) | $0) }
        gd += [UInt8](repeating: 0, count: Int(gdSectors * 512) - gd.count)
        out += gd
        out += gts.flatMap { le64($0) }
        out += [UInt8](repeating: 0, count: 1024)
        return out + data
    }

    /// A COWD (vmfsSparse) redo log over `capacity` sectors with 4 KiB grains.
    public static func cowd(capacity: UInt64, rng: inout some RandomNumberGenerator) -> [UInt8] {
        let grain: UInt64 = 8
        let grains = (capacity + grain - 1) / grain
        let tables = (grains + 4095) / 4096
        let gtStart: UInt64 = 4 + (tables * 4 + 511) / 512
        var gts = [UInt32](repeating: 0, count: Int(tables * 4096))
        var data: [UInt8] = []
        let dataStart = gtStart + tables * 32
        for g in 0..<Int(grains) where Int.random(in: 0..<3, using: &rng) == 0 {
            gts[g] = UInt32(dataStart + UInt64(data.count / 512))
            let fill = UInt8.random(in: 1...255, using: &rng)
            data += (0..<4096).map { UInt8(truncatingIfNeeded: Int(fill) ^ $0) }
        }
        var w = ByteWriter()
        w.write(bytes: Array("COWD".utf8))
        for v: UInt32 in [1, 3, UInt32(capacity), UInt32(grain), 4, UInt32(tables), UInt32(dataStart + UInt64(data.count / 512))] {
            w.writeLittleEndian(v)
        }
        w.writeZeros(2048 - w.bytes.count)
        for t in 0..<tables { w.writeLittleEndian(UInt32(gtStart + t * 32)) }
        w.writeZeros(Int(gtStart * 512) - w.bytes.count)
        for e in gts { w.writeLittleEndian(e) }
        return w.bytes + data
    }


    /// The descriptor of a child whose one extent is `file` (`type`: VMFSSPARSE or SESPARSE),
    /// over the parent whose CID is `parentCID`, named by `hint` (ESXi writes an absolute
    /// /vmfs/volumes path).
    public static func childDescriptor(
        capacity: UInt64, type: String, createType: String, file: String, parentCID: some StringProtocol, hint: String
    ) -> String {
        """
        # Disk DescriptorFile
        version=1
        encoding="UTF-8"
        CID=abcdef01
        parentCID=\(parentCID)
        createType="\(createType)"
        parentFileNameHint="\(hint)"

        # Extent description
        RW \(capacity) \(type) "\(file)"

        """
    }
}
