public import FerryDisk
public import FerryFormats

/// `nbd://` and `nbd+unix://` for every command (registered in `Ferry.main`): a source is the
/// export read-only; a target must be writable and exactly the source's size.
public struct NBDScheme: DiskScheme {
    public init() {}

    public var schemes: [String] { NBDURI.schemes }

    public func openSource(_ uri: String, policy: SourcePolicy) throws -> OpenedSource {
        let client = try NBDClient(uri)
        let image = SourceChain.Image(role: .source, path: client.name, format: .raw, reason: .detected)
        return OpenedSource(disk: client, chain: SourceChain(images: [image]))
    }

    public func openTarget(_ uri: String, size: UInt64) throws -> any BlockDevice {
        let client = try NBDClient(uri, writable: true)
        guard client.size == size else {
            try? client.close()
            throw DiskError(.tooSmall, client.name, operation: "open", "the NBD export is \(client.size) bytes, the source \(size)")
        }
        return client
    }
}
