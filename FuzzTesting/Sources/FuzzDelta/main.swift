import FerryProtocol

/// libFuzzer's entry: a hostile peer's side of delta sync's fine pass (`DeltaFuzz.run`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        try DeltaFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    } catch {
        fatalError("FuzzDelta: \(error)")
    }
    return 0
}
