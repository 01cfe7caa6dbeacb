import FerryFormats

/// libFuzzer's entry (paged input of 512-byte sectors, see FuzzPagedInput): an OVA (tar members, OVF, the disk inside) opened in memory, its disk read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try FormatsFuzz.run(.ova, bytes)
    } catch where FormatsFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzOVA: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
