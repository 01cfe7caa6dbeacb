import FerryBinary
import FerryDisk
import Foundation

@testable import FerryFormats

/// Builds a VMware-dialect streamOptimized VMDK (what ovftool and vSphere export
/// write, which no Debian tool produces): header with gdOffset = GD_AT_END, embedded
/// descriptor, zlib grain markers, a GT marker + GT after each table's grains, a GD
/// marker + GD, a footer marker + footer (the header with the real gdOffset), EOS.
/// Technote §"Stream-Optimized Compressed Sparse Extents".
enum VMwareStreamBuilder {
    static let grainSectors: UInt64 = 128
    static let gtEntries: UInt64 = 512

    static func build(from raw: [UInt8]) -> [UInt8] {
        let capacity = (UInt64(raw.count) + 511) / 512
        let grainBytes = Int(grainSectors * 512)
        let grains = (capacity + grainSectors - 1) / grainSectors
        let tables = (grains + gtEntries - 1) / gtEntries
        var out = ByteWriter()
        let descriptor = """
            # Disk DescriptorFile
            version=1
            CID=5eed0001
            parentCID=ffffffff
            createType="streamOptimized"

            RW \(capacity) SPARSE "stream.vmdk"

            ddb.adapterType = "lsilogic"
            ddb.virtualHWVersion = "14"

            """
        let descriptorSectors: UInt64 = 2
        out.write(bytes: header(capacity: capacity, gdOffset: VMDK.gdAtEnd, descriptorSectors: descriptorSectors))
        var text = Array(descriptor.utf8)
        text += [UInt8](repeating: 0, count: Int(descriptorSectors * 512) - text.count)
        out.write(bytes: text)
        var gd: [UInt32] = []
        for table in 0..<tables {
            var gt = [UInt32](repeating: 0, count: Int(gtEntries))
            for entry in 0..<gtEntries {
                let grain = table * gtEntries + entry
                guard grain < grains else { break }
                let start = Int(grain) * grainBytes
                let chunk = Array(raw[start..<min(raw.count, start + grainBytes)])
                if chunk.allSatisfy({ $0 == 0 }) { continue }  // sparse grains are simply omitted
                gt[Int(entry)] = UInt32(out.bytes.count / 512)
                let compressed = Codec.zlib.compress(chunk, limit: grainBytes * 2) ?? []
                out.writeLittleEndian(grain * grainSectors)  // lba
                out.writeLittleEndian(UInt32(compressed.count))
                out.write(bytes: compressed)
                pad(&out)
            }
            marker(&out, value: gtEntries * 4 / 512, type: 1)
            gd.append(UInt32(out.bytes.count / 512))
            for e in gt { out.writeLittleEndian(e) }
            pad(&out)
        }
        marker(&out, value: (UInt64(gd.count) * 4 + 511) / 512, type: 2)
        let gdSector = UInt64(out.bytes.count / 512)
        for e in gd { out.writeLittleEndian(e) }
        pad(&out)
        marker(&out, value: 1, type: 3)
        out.write(bytes: header(capacity: capacity, gdOffset: gdSector, descriptorSectors: descriptorSectors))
        marker(&out, value: 0, type: 0)
        return out.bytes
    }

    static func header(capacity: UInt64, gdOffset: UInt64, descriptorSectors: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.writeLittleEndian(VMDK.sparseMagic)
        w.writeLittleEndian(UInt32(3))  // version
        w.writeLittleEndian(UInt32(0x3_0001))  // newline test valid, compressed, markers
        w.writeLittleEndian(capacity)
        w.writeLittleEndian(grainSectors)
        w.writeLittleEndian(UInt64(1))  // descriptorOffset
        w.writeLittleEndian(descriptorSectors)
        w.writeLittleEndian(UInt32(gtEntries))
        w.writeLittleEndian(UInt64(0))  // rgdOffset
        w.writeLittleEndian(gdOffset)
        w.writeLittleEndian(UInt64(1 + descriptorSectors))  // overHead
        w.write(0)  // uncleanShutdown
        w.write(bytes: [0x0a, 0x20, 0x0d, 0x0a])
        w.writeLittleEndian(UInt16(1))  // deflate
        w.writeZeros(512 - w.bytes.count)
        return w.bytes
    }

    static func marker(_ out: inout ByteWriter, value: UInt64, type: UInt32) {
        out.writeLittleEndian(value)
        out.writeLittleEndian(UInt32(0))
        out.writeLittleEndian(type)
        out.writeZeros(496)
    }

    static func pad(_ out: inout ByteWriter) {
        out.writeZeros((512 - out.bytes.count % 512) % 512)
    }
}
