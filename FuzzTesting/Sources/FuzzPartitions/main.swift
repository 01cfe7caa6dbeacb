import FerryPartitions

/// libFuzzer's entry: a disk (paged input of 512-byte sectors) whose MBR/GPT is read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try PartitionsFuzz.run(bytes)
    } catch where PartitionsFuzz.isExpected(error) {
        // Bad input refused with the parser's own error: the expected outcome.
    } catch {
        fatalError("FuzzPartitions: unexpected \(type(of: error)): \(error)")
    }
    return 0
}
