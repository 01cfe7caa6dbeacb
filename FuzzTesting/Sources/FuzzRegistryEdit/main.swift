import FerryRegistry

/// libFuzzer's entry: a regf hive opened for editing, edited, and the result re-checked.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try RegistryEditFuzz.run(bytes)
    } catch where RegistryEditFuzz.isExpected(error) {
        // The editor refused the hive or an edit with its own error: the expected outcome.
    } catch {
        fatalError("FuzzRegistryEdit: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
