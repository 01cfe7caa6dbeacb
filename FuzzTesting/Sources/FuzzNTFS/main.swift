import FerryNTFS

/// libFuzzer's entry: an NTFS volume (paged input of 4 KiB pages) opened, paths looked up, a file read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try NTFSFuzz.run(bytes)
    } catch where NTFSFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzNTFS: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
