public import FerryDisk
public import FerryFormats

/// `nbd://` and `nbd+unix://` for every command (registered in `Ferry.main`): a source is the
/// export read-only; a target must be writable and at least the source's size (a larger one is
/// written from its start; the rest is left as it was). Both are an `NBDConnectionPool`: several
/// connections when the server offers multi-conn (`FERRY_NBD_CONNECTIONS`, default 4).
public struct NBDScheme: DiskScheme {
    public init() {}

    public var schemes: [String] { NBDURI.schemes }

    public func openSource(_ uri: String, policy: SourcePolicy) throws -> OpenedSource {
        let client = try NBDConnectionPool(uri)
        let image = SourceChain.Image(role: .source, path: client.name, format: .raw, reason: .detected)
        return OpenedSource(disk: client, chain: SourceChain(images: [image]))
    }

    /// Connects writable: a read-only export (`NBD_FLAG_READ_ONLY`) is refused by `NBDClient`
    /// (`DiskError.readOnly`) on its first connection, one smaller than `size` here (`.tooSmall`), before any request.
    public func openTarget(_ uri: String, size: UInt64) throws -> any BlockDevice {
        let client = try NBDConnectionPool(uri, writable: true)
        guard client.size >= size else {
            try? client.close()
            throw DiskError(
                .tooSmall, client.name, operation: "open",
                "the NBD export holds \(client.size) bytes but the source needs \(size); nothing was written")
        }
        return client
    }
}
