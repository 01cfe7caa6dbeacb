public import FerryDisk
public import FerryFormats

/// A datastore of one ESXi host as the place an image's files live: each file a ranged
/// `ESXiFile`. Names arrive relative to the datastore and already confined by FerryFormats.
public struct ESXiDatastore: ImageFileSource {
    public let session: ESXiSession
    public let name: String

    public init(session: ESXiSession, name: String) {
        self.session = session
        self.name = name
    }

    public func open(_ path: String) throws -> any BlockDevice {
        try ESXiFile(session: session, datastore: name, path: try ESXiLocation.confined(path, "[\(name)] \(path)"))
    }
}
