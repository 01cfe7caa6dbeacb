import FerryRegistry

/// libFuzzer's entry: a regf hive opened and walked.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try RegistryFuzz.run(bytes)
    } catch where RegistryFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzRegistry: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
