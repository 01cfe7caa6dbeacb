import FerryProtocol

/// libFuzzer's entry: a resume journal parsed and written back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try JournalFuzz.run(bytes)
    } catch where JournalFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzJournal: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
