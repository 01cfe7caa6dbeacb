/// Why the hive editor refused an edit or a hive. Damaged structures are `FormatError`s;
/// these are the refusals that are about the request or the hive's state.
public struct HiveEditError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// Unequal sequence numbers or a bad base-block checksum: the .LOG files hold newer data.
        case dirty
        /// The hive is not a primary hive file (a log, or an unknown format).
        case notPrimary
        /// A key on the path does not exist.
        case noSuchKey
        /// A key or value name Windows would not accept.
        case badName
        /// A count, length or size limit would be exceeded.
        case limitExceeded
        /// The request is valid but this writer does not do it.
        case unsupported
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "registry hive: \(detail)" }
}
