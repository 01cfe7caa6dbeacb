/// A property a fuzz entry point checks beyond "no trap" failed (a decoded message that does
/// not re-encode to itself, a parse that differs between two runs). Never an expected outcome
/// of bad input: the fuzz targets in `FuzzTesting/` trap on it so libFuzzer saves the input.
public struct FuzzFinding: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
