import FerryTarget

/// libFuzzer's entry: a .vmx parsed, planned and rendered for every target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try VMXFuzz.run(bytes)
    } catch where VMXFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzVMX: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
