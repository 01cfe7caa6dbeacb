import CFerryShims
public import FerryProtocol

/// Compression codecs loaded at run time by soname, as systemd does: ferry runs
/// (without compression) on hosts lacking libzstd or liblz4, and says what is missing
/// when a codec is asked for. zlib's deflate is the "gzip" codec (libz.so.1, always
/// present on a Linux host).
///
/// Each codec exposes one-shot calls over whole chunks (≤ 4 MiB), which is what the
/// wire carries: every compressed extent decompresses on its own.
public final class Codec: Sendable {
    public let kind: CompressedExtent.Codec
    private let compressFn: @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Int?
    private let decompressFn: @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Int?

    private init(
        kind: CompressedExtent.Codec,
        compress: @escaping @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Int?,
        decompress: @escaping @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Int?
    ) {
        self.kind = kind
        compressFn = compress
        decompressFn = decompress
    }

    /// Compresses `input` into `output`; nil if it does not fit (the caller then sends raw).
    public func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        compressFn(input, output)
    }

    /// Decompresses into `output`, which must be filled exactly; nil on corrupt input.
    public func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        decompressFn(input, output)
    }

    /// The codecs this host can load.
    public static func available() -> [Codec] {
        CompressedExtent.Codec.allCases.compactMap { try? load($0) }
    }

    public static func capability(_ kind: CompressedExtent.Codec) -> Capabilities {
        switch kind {
        case .zstd: .zstd
        case .lz4: .lz4
        case .gzip: .gzip
        }
    }

    /// Loads `kind`, or explains which library is missing.
    public static func load(_ kind: CompressedExtent.Codec) throws(TransferError) -> Codec {
        switch kind {
        case .zstd: return try zstd()
        case .lz4: return try lz4()
        case .gzip: return try zlib()
        }
    }

    private static func symbol<T>(_ handle: UnsafeMutableRawPointer, _ name: String, _: T.Type, _ soname: String) throws(TransferError) -> T {
        guard let pointer = ferry_dlsym(handle, name) else {
            throw TransferError(.usage, "\(soname) has no \(name)")
        }
        return unsafeBitCast(pointer, to: T.self)
    }

    private static func open(_ soname: String, _ package: String) throws(TransferError) -> UnsafeMutableRawPointer {
        guard let handle = ferry_dlopen(soname) else {
            throw TransferError(.usage, "compression needs \(soname), which is not installed (apt install \(package))")
        }
        return handle
    }

    // size_t ZSTD_compress(void*, size_t, const void*, size_t, int); unsigned ZSTD_isError(size_t);
    // size_t ZSTD_decompress(void*, size_t, const void*, size_t)
    private typealias ZstdCompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int, Int32) -> Int
    private typealias ZstdDecompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    private typealias ZstdIsError = @convention(c) (Int) -> UInt32

    private static func zstd() throws(TransferError) -> Codec {
        let soname = "libzstd.so.1"
        let h = try open(soname, "libzstd1")
        let c = try symbol(h, "ZSTD_compress", ZstdCompress.self, soname)
        let d = try symbol(h, "ZSTD_decompress", ZstdDecompress.self, soname)
        let isError = try symbol(h, "ZSTD_isError", ZstdIsError.self, soname)
        return Codec(
            kind: .zstd,
            compress: { input, output in
                let n = c(output.baseAddress, output.count, input.baseAddress, input.count, 1)
                return isError(n) != 0 ? nil : n
            },
            decompress: { input, output in
                let n = d(output.baseAddress, output.count, input.baseAddress, input.count)
                return isError(n) != 0 || n != output.count ? nil : n
            })
    }

    // int LZ4_compress_default(const char*, char*, int, int); int LZ4_decompress_safe(const char*, char*, int, int)
    private typealias Lz4Call = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Int32) -> Int32

    private static func lz4() throws(TransferError) -> Codec {
        let soname = "liblz4.so.1"
        let h = try open(soname, "liblz4-1")
        let c = try symbol(h, "LZ4_compress_default", Lz4Call.self, soname)
        let d = try symbol(h, "LZ4_decompress_safe", Lz4Call.self, soname)
        return Codec(
            kind: .lz4,
            compress: { input, output in
                let n = c(input.baseAddress, output.baseAddress, Int32(input.count), Int32(clamping: output.count))
                return n > 0 ? Int(n) : nil
            },
            decompress: { input, output in
                let n = d(input.baseAddress, output.baseAddress, Int32(input.count), Int32(clamping: output.count))
                return Int(n) == output.count ? Int(n) : nil
            })
    }

    // int compress2(Bytef*, uLongf*, const Bytef*, uLong, int); int uncompress(Bytef*, uLongf*, const Bytef*, uLong)
    private typealias ZCompress2 = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt>?, UnsafeRawPointer?, UInt, Int32) -> Int32
    private typealias ZUncompress = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt>?, UnsafeRawPointer?, UInt) -> Int32

    private static func zlib() throws(TransferError) -> Codec {
        let soname = "libz.so.1"
        let h = try open(soname, "zlib1g")
        let c = try symbol(h, "compress2", ZCompress2.self, soname)
        let d = try symbol(h, "uncompress", ZUncompress.self, soname)
        return Codec(
            kind: .gzip,
            compress: { input, output in
                var length = UInt(output.count)
                return c(output.baseAddress, &length, input.baseAddress, UInt(input.count), 1) == 0 ? Int(length) : nil
            },
            decompress: { input, output in
                var length = UInt(output.count)
                let status = d(output.baseAddress, &length, input.baseAddress, UInt(input.count))
                return status == 0 && Int(length) == output.count ? Int(length) : nil
            })
    }
}
