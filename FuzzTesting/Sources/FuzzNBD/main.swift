import FerryNBD

/// libFuzzer's entry: the NBD message parsers (`NBDFuzz.run`: the client's reply decoder, the
/// server's negotiation and request checks, the client's negotiation) fed a hostile peer's bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        try NBDFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    } catch {
        fatalError("FuzzNBD: \(error)")
    }
    return 0
}
