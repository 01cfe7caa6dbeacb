import Foundation

/// Images a guest (or a stranger's file) could hand ferry to make it read host files:
/// the qemu CVE-2008-2004 class. Built in code, so the tests need no qemu-img.
public enum HostileImages {
    /// A qcow2 v2 image (qcow2.rst) of `virtualSize` bytes with every cluster
    /// unallocated, so every read falls through to the backing file `backing`:
    ///
    /// ```
    ///  0  header (72 bytes: magic, version 2, backing_file_offset 80, backing_file_size,
    ///     cluster_bits 16, size, l1_size 1, l1_table_offset 65536)
    ///  72 end-of-extensions marker (8 zero bytes), 80 the backing name
    ///  65536 the L1 table: one zero entry (nothing allocated)
    /// ```
    /// `backingFormat` adds the backing-format extension ("raw", "qcow2", …).
    public static func qcow2(backing: String, backingFormat: String? = nil, virtualSize: UInt64 = 1 << 20) -> [UInt8] {
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        let name = Array(backing.utf8)
        var extensions: [UInt8] = []
        if let backingFormat {
            let text = Array(backingFormat.utf8)
            extensions += be(UInt32(0xE279_2ACA)) + be(UInt32(text.count)) + text
            extensions += [UInt8](repeating: 0, count: (8 - text.count % 8) % 8)
        }
        extensions += [UInt8](repeating: 0, count: 8)  // end of extensions
        let nameOffset = 72 + extensions.count
        var header = [0x51, 0x46, 0x49, 0xFB] + be(UInt32(2))
        header += be(UInt64(nameOffset)) + be(UInt32(name.count))
        header += be(UInt32(16)) + be(virtualSize) + be(UInt32(0))  // cluster_bits, size, crypt_method
        let l2Span: UInt64 = 65536 * 8192
        header += be(UInt32((virtualSize + l2Span - 1) / l2Span)) + be(UInt64(65536))  // l1_size, l1_table_offset
        header += be(UInt64(0)) + be(UInt32(0)) + be(UInt32(0)) + be(UInt64(0))  // refcounts, snapshots
        var file = header + extensions + name
        file += [UInt8](repeating: 0, count: 2 * 65536 - file.count)
        return file
    }

    /// A VMDK text descriptor with one FLAT extent of `sectors` 512-byte sectors in `extent`.
    public static func vmdkDescriptor(extent: String, sectors: UInt64) -> String {
        """
        # Disk DescriptorFile
        version=1
        CID=fffffffe
        parentCID=ffffffff
        createType="monolithicFlat"

        # Extent description
        RW \(sectors) FLAT "\(extent)" 0

        ddb.virtualHWVersion = "4"
        ddb.geometry.cylinders = "1"
        ddb.geometry.heads = "16"
        ddb.geometry.sectors = "63"
        ddb.adapterType = "ide"

        """
    }

    /// A "host secret" of `size` recognisable bytes at `path`, outside any image directory.
    public static func writeSecret(_ path: String, size: Int = 65536) throws -> [UInt8] {
        let line = Array("HOST-SECRET root:$6$not-a-real-hash:19000:0:99999:7:::\n".utf8)
        let bytes = (0..<size).map { line[$0 % line.count] }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return bytes
    }
}
