/// An error in a parsed structure: what was wrong, where, and in which file.
///
/// Every parser in ferry reports hostile or damaged input with one of these, so a person
/// at 3 a.m. reads *which* structure, *which* field and *which* byte offset was bad.
public struct FormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        case truncated
        case badMagic
        case unsupportedVersion
        case unsupportedFeature
        case outOfRange
        case badChecksum
        case cycle
        case limitExceeded
        case inconsistent
        /// A file the image names lies outside what the source policy allows.
        case notAllowed
    }

    public var code: Code
    /// The structure being parsed, e.g. "qcow2 header" or "regf base block".
    public var structure: String
    /// The field, when one is to blame.
    public var field: String?
    /// Byte offset of the problem within the file or device, when known.
    public var offset: UInt64?
    /// The file or device, filled in by whoever knows the name.
    public var file: String?
    /// A sentence of detail.
    public var detail: String

    public init(
        _ code: Code, structure: String, field: String? = nil, offset: UInt64? = nil,
        file: String? = nil, _ detail: String
    ) {
        self.code = code
        self.structure = structure
        self.field = field
        self.offset = offset
        self.file = file
        self.detail = detail
    }

    /// The same error with the file name attached.
    public func inFile(_ name: String) -> FormatError {
        var copy = self
        if copy.file == nil { copy.file = name }
        return copy
    }

    public var description: String {
        var text = file.map { "\($0): " } ?? ""
        text += structure
        if let field { text += " field \(field)" }
        if let offset { text += " at byte offset \(offset)" }
        return text + ": " + detail
    }
}
