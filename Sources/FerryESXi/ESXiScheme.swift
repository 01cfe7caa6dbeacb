public import FerryFormats
import FerryTarget
import Foundation

/// `esxi://USER@HOST/[datastore] dir/vm.vmdk` (or `…/vm.vmx`) for every command that opens a
/// source: registered with `DiskSchemes` at launch.
public struct ESXiScheme: DiskScheme {
    public var schemes: [String] { ["esxi"] }
    public let settings: ESXiSettings
    /// Where warnings go (`--insecure`): standard error by default.
    let warn: @Sendable (String) -> Void

    public init(settings: ESXiSettings = ESXiSettings(), warn: @escaping @Sendable (String) -> Void = ESXiScheme.standardError) {
        self.settings = settings
        self.warn = warn
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    public func openSource(_ uri: String, policy: SourcePolicy) throws -> OpenedSource {
        let location = try ESXiLocation(parsing: uri)
        let session = try connect(location)
        switch location.target {
        case .file(let datastore, let path):
            let store = ESXiDatastore(session: session, name: datastore)
            let disk = path.lowercased().hasSuffix(".vmx") ? try Self.vmxDisk(path, in: store) : path
            return try DiskImage.open(source: disk, files: store, policy: policy)
        case .vm(let name):
            throw ESXiError(
                .notFound, location.display,
                "naming a VM (\(name)) needs the vSphere API, which this build does not speak yet; name its file instead: esxi://\(location.user)@\(location.host)/[datastore] dir/\(name).vmx")
        }
    }

    /// A session to the location's host under these settings.
    public func connect(_ location: ESXiLocation) throws -> ESXiSession {
        let trust = try settings.trust(for: location)
        let password = try settings.password(for: location)
        return try ESXiSession(location: location, password: password, trust: trust, options: settings.session, warn: warn)
    }

    /// The one disk a .vmx names (its directory's file), or an error listing them when there
    /// are several: name the .vmdk to choose.
    static func vmxDisk(_ vmxPath: String, in store: ESXiDatastore) throws -> String {
        let file = try ESXiFile(session: store.session, datastore: store.name, path: vmxPath)
        guard file.size <= 4 << 20 else {
            throw ESXiError(.protocolViolation, file.name, "a .vmx of \(file.size) bytes is not a VM configuration")
        }
        let machine = try SourceMachine(vmxBytes: try file.readBytes(at: 0, count: Int(file.size)))
        let directory = vmxPath.split(separator: "/").dropLast().joined(separator: "/")
        let disks = machine.disks.map { disk -> String in
            // ESXi writes absolute names (/vmfs/volumes/…/x.vmdk) for disks outside the VM's
            // directory; a base name is the file beside the .vmx.
            let name = disk.fileName.hasPrefix("/") ? String(disk.fileName.split(separator: "/").last ?? "") : disk.fileName
            return directory.isEmpty ? name : directory + "/" + name
        }
        guard disks.count == 1, let only = disks.first else {
            let listed = disks.isEmpty ? "none" : disks.map { "[\(store.name)] \($0)" }.joined(separator: ", ")
            throw ESXiError(.notFound, file.name, "the VM has \(disks.count) disks (\(listed)); name the .vmdk to read")
        }
        return try ESXiLocation.confined(only, file.name)
    }
}
