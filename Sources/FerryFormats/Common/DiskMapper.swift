import FerryBinary

/// Where one run of guest (virtual-disk) bytes comes from.
///
/// Every sparse format — qcow2 L2 entries, VMDK grain tables, VHD/VHDX block
/// tables — reduces to these cases, so reading, extents, backing files and
/// decompression are written once in `MappedDisk`.
enum RunSource: Sendable {
    /// Not allocated in this image: read the backing/parent disk, else zeros.
    case hole
    /// Allocated as zeros (qcow2 zero cluster, VMDK zeroed grain); masks any backing.
    case zero
    /// Stored uncompressed and contiguous at `HostOffset` in `HostFile`.
    case data(HostFile, HostOffset)
    /// Inside a compressed unit: the run starts `within` bytes into the decompressed unit.
    case compressed(CompressedUnit, within: Int)
}

/// A run of guest bytes with one source.
struct MappedRun: Sendable {
    var length: UInt64
    var source: RunSource
}

/// One compressed cluster or grain: where it is and how big it inflates.
struct CompressedUnit: Sendable {
    let file: HostFile
    /// Where the compressed bytes (or the grain marker holding them) start.
    let offset: HostOffset
    /// Stored bytes to read (the format's upper bound; may be clipped at end of file).
    let storedLength: Int
    /// Size once decompressed (cluster or grain size).
    let unitSize: Int
    /// The guest offset the unit starts at (grain markers record it; checked on read).
    let guestOffset: UInt64

    var cacheKey: CacheKey { CacheKey(file: ObjectIdentifier(file), offset: offset) }

    struct CacheKey: Hashable, Sendable {
        let file: ObjectIdentifier
        let offset: HostOffset
    }
}

/// Translates guest offsets of one image into runs. Implementations hold their
/// tables behind a `Mutex` so one mapper serves concurrent readers.
protocol DiskMapper: Sendable {
    /// Virtual size in bytes.
    var virtualSize: UInt64 { get }
    /// The run starting at `offset`, between 1 and `limit` bytes long.
    /// `offset + limit <= virtualSize` and `limit >= 1` are guaranteed by the caller.
    func run(at offset: UInt64, limit: UInt64) throws -> MappedRun
    /// Inflates one compressed unit into exactly `unit.unitSize` bytes.
    func decompress(_ unit: CompressedUnit) throws -> [UInt8]
}

extension DiskMapper {
    func decompress(_ unit: CompressedUnit) throws -> [UInt8] {
        throw FormatError(
            .inconsistent, structure: "image", offset: unit.offset.bytes, file: unit.file.path,
            "this format has no compressed units")
    }
}
