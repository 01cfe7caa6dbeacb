import FerryBinary

/// libFuzzer's entry: the XML reader of vSphere SOAP replies (`XMLTree`), fed a hostile host's
/// bytes. It must end with an element or its own `ParseError` (typed throws), never a trap; an
/// element read must also keep the bound on its depth.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var limits = XMLTree.Limits()
    limits.depth = 64
    guard let root = try? XMLTree.parse(Array(UnsafeBufferPointer(start: data, count: size)), limits: limits) else { return 0 }
    func depth(_ e: XMLTree.Element) -> Int { 1 + (e.children.map(depth).max() ?? 0) }
    if depth(root) > 64 { fatalError("FuzzXML: a tree deeper than the limit") }
    return 0
}
