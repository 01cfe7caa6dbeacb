import FerryDisk
import FerryBinary

/// Entry points for the coverage-guided fuzz targets in `FuzzTesting/` and for the unit
/// tests that replay their crash inputs: each opens hostile bytes as an image held in
/// memory and reads a bounded amount of it. Throwing `FormatError`/`DiskError` is the
/// expected outcome of bad input; a trap, a hang or another error type is a finding.
public enum FormatsFuzz {
    /// One parser per fuzz target.
    public enum Target: String, CaseIterable, Sendable {
        case qcow2, vmdk, vmdkDescriptor, vhd, vhdx, ova
    }

    /// Most bytes of a mutated disk whose extents are listed (a size field may claim petabytes).
    public static let extentSpan: UInt64 = 64 << 20
    /// Most bytes read from the front of the opened disk.
    public static let readSpan: UInt64 = 256 << 10
    /// Images are mostly zeros (a VHDX aligns its regions to 1 MiB, a dynamic VHD allocates
    /// 2 MiB blocks, qcow2 metadata takes whole clusters), so an image target's input is the
    /// file as a `FuzzPagedInput` of 512-byte sectors, all-zero sectors left out. Every format
    /// here places its structures on sector boundaries.
    public static let pageSize = 512

    /// The file name the bytes are opened under. Its directory does not exist, so names
    /// stored in the image (backing files, extents, parents) resolve to nothing real.
    static let path = "/nonexistent-ferry-fuzz/input"

    /// Runs `target`'s parser over `bytes`.
    public static func run(_ target: Target, _ bytes: [UInt8]) throws {
        if target == .vmdkDescriptor {
            _ = try VMDK.Descriptor(parsing: String(decoding: bytes, as: UTF8.self), file: path)
            return
        }
        let file = HostFile(path: path, device: FuzzPagedInput.device(bytes, pageSize: pageSize))
        var chain = ChainGuard()
        try chain.enter(path, structure: "image chain")
        let disk: any BlockDevice
        switch target {
        case .qcow2: disk = try QCOW2.open(file, chain: &chain)
        case .vmdk: disk = try VMDK.open(file, chain: &chain)
        case .vhd: disk = try VHD.open(file, chain: &chain)
        case .vhdx: disk = try VHDX.open(file, chain: &chain)
        case .ova: disk = try OVA.open(file, member: nil, chain: &chain)
        case .vmdkDescriptor: return
        }
        try exercise(disk)
    }

    /// Lists the extents and reads the front of `disk`, bounded.
    static func exercise(_ disk: any BlockDevice) throws {
        let span = min(disk.size, extentSpan)
        _ = try disk.extents(at: 0, length: span)
        var at: UInt64 = 0
        while at < min(span, readSpan) {
            let n = Int(min(span - at, 64 * 1024 + 17))
            _ = try disk.readBytes(at: at, count: n)
            at += UInt64(n)
        }
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is FormatError || error is DiskError }
}
