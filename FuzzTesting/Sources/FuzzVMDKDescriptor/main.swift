import FerryFormats

/// libFuzzer's entry: a VMDK text descriptor parsed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try FormatsFuzz.run(.vmdkDescriptor, bytes)
    } catch where FormatsFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzVMDKDescriptor: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
