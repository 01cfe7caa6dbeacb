import FerryFormats

/// libFuzzer's entry (paged input of 512-byte sectors, see FuzzPagedInput): a VMDK (sparse, stream-optimized, COWD, SESparse or a descriptor) opened in memory, extents listed, its front read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try FormatsFuzz.run(.vmdk, bytes)
    } catch where FormatsFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzVMDK: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
