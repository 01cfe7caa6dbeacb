public import FerryDisk
import Synchronization

/// A disk named by a URI instead of a path: `nbd://host/export`, `nbd+unix:///x?socket=…`,
/// `esxi://user@host/vm`. The modules that speak those protocols (they depend on the network
/// stack, which this module must not) register a scheme at launch; every command that opens a
/// source through `DiskImage.open(source:)` then accepts the URI unchanged.
public protocol DiskScheme: Sendable {
    /// The URI schemes handled, lower case, without "://" (e.g. `["nbd", "nbds", "nbd+unix"]`).
    var schemes: [String] { get }
    /// Opens `uri` read-only as a source under `policy`.
    func openSource(_ uri: String, policy: SourcePolicy) throws -> OpenedSource
    /// Opens `uri` as a writable target for a disk of `size` bytes (the size the source has),
    /// or throws — before writing anything — when the scheme cannot be written, the remote
    /// disk is read-only, or it holds fewer than `size` bytes.
    func openTarget(_ uri: String, size: UInt64) throws -> any BlockDevice
}

extension DiskScheme {
    public func openTarget(_ uri: String, size: UInt64) throws -> any BlockDevice {
        throw DiskError(.unsupported, uri, operation: "open", "\(schemes.first ?? "this") URIs can be read, not written")
    }
}

/// The registered URI schemes (see `DiskScheme`).
public enum DiskSchemes {
    private static let registered = Mutex<[String: any DiskScheme]>([:])

    /// Registers `scheme` for each of its names; a later registration of a name wins.
    public static func register(_ scheme: any DiskScheme) {
        registered.withLock { table in
            for name in scheme.schemes { table[name.lowercased()] = scheme }
        }
    }

    /// The URI scheme of `name` (`nbd` of `nbd://h/e`), or nil when `name` is a path.
    /// A path with "://" further on (`./a://b`) is a path: the scheme must be a leading
    /// RFC 3986 scheme name.
    public static func uriScheme(of name: String) -> String? {
        guard let colon = name.firstIndex(of: ":"), name[colon...].hasPrefix("://") else { return nil }
        let scheme = name[..<colon]
        guard let first = scheme.first, first.isASCII, first.isLetter,
            scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return nil }
        return scheme.lowercased()
    }

    /// The registered scheme that handles `name`, or nil for a path. Throws for a URI whose
    /// scheme nobody registered, so `http://x` is not taken for a relative file name.
    public static func scheme(for name: String) throws -> (any DiskScheme)? {
        guard let scheme = uriScheme(of: name) else { return nil }
        if let handler = registered.withLock({ $0[scheme] }) { return handler }
        let known = registered.withLock { $0.keys.sorted() }
        throw DiskError(
            .unsupported, name, operation: "open",
            "ferry does not read \(scheme):// URIs" + (known.isEmpty ? "" : " (it reads \(known.map { $0 + "://" }.joined(separator: ", ")))"))
    }
}
