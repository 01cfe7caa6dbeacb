import CFerryZlib
import FerryBinary

/// The compression codecs found inside images.
enum Codec: Sendable, Hashable {
    /// Raw deflate, no header (qcow2 compression type 0, window bits -12).
    case rawDeflate
    /// zlib-wrapped deflate (VMDK stream-optimized grains, RFC 1950).
    case zlib
    /// A zstd frame (qcow2 compression type 1).
    case zstd

    /// Decompresses `input` into exactly `outputSize` bytes. A stream that ends
    /// early is an error unless `allowShort`, in which case the rest stays zero.
    func decompress(
        _ input: [UInt8], outputSize: Int, allowShort: Bool = false, structure: String, file: String, offset: UInt64
    ) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: outputSize)
        var produced = 0
        let status: Int32 = input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                switch self {
                case .rawDeflate:
                    ferry_inflate(src.baseAddress, src.count, dst.baseAddress, dst.count, -12, &produced)
                case .zlib:
                    ferry_inflate(src.baseAddress, src.count, dst.baseAddress, dst.count, 15, &produced)
                case .zstd:
                    ferry_zstd_decompress(src.baseAddress, src.count, dst.baseAddress, dst.count, &produced)
                }
            }
        }
        switch status {
        case FERRY_Z_OK:
            return output
        case FERRY_Z_SHORT where allowShort:
            return output
        case FERRY_Z_SHORT:
            throw FormatError(
                .inconsistent, structure: structure, offset: offset, file: file,
                "compressed data inflates to \(produced) bytes, expected \(outputSize)")
        case FERRY_Z_UNAVAILABLE:
            throw FormatError(
                .unsupportedFeature, structure: structure, offset: offset, file: file,
                "zstd-compressed data needs libzstd.so.1, which could not be loaded (install libzstd1)")
        case FERRY_Z_TRUNCATED:
            throw FormatError(
                .truncated, structure: structure, offset: offset, file: file,
                "compressed data (\(input.count) bytes) ends before producing \(outputSize) bytes")
        default:
            throw FormatError(
                .inconsistent, structure: structure, offset: offset, file: file,
                "compressed data is corrupt (\(self) decoder status \(status))")
        }
    }

    /// Compresses `input` (deflate or zlib); nil when it does not fit in `limit` bytes.
    func compress(_ input: [UInt8], limit: Int, level: Int32 = 6) -> [UInt8]? {
        let bits: Int32
        switch self {
        case .rawDeflate: bits = -12
        case .zlib: bits = 15
        case .zstd: return nil
        }
        var output = [UInt8](repeating: 0, count: limit)
        var produced = 0
        let status = input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                ferry_deflate(src.baseAddress, src.count, dst.baseAddress, dst.count, bits, level, &produced)
            }
        }
        guard status == FERRY_Z_OK else { return nil }
        output.removeLast(limit - produced)
        return output
    }
}
