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
        if location.target == .host {
            throw ESXiError(
                .badName, location.display,
                "names a host, not a disk: add a VM name (esxi://\(location.user)@\(location.host)/VM) or a file ([datastore] dir/vm.vmdk); `ferry esxi ls` lists the VMs")
        }
        let password = try settings.password(for: location)
        let session = try connect(location, password: password)
        switch location.target {
        case .file(let datastore, let path):
            let store = ESXiDatastore(session: session, name: datastore)
            let disk = path.lowercased().hasSuffix(".vmx") ? try Self.vmxDisk(path, in: store) : path
            return try DiskImage.open(source: disk, files: store, policy: policy)
        case .vm(let name):
            let machines = try Self.machines(session, password: password)
            let machine = try Self.machine(named: name, in: machines, location)
            return try Self.open(machine, session: session, allowRunning: settings.allowRunning, warn: warn, policy: policy)
        case .host:
            preconditionFailure("refused above")
        }
    }

    /// A session to the location's host under these settings.
    public func connect(_ location: ESXiLocation, password: String? = nil) throws -> ESXiSession {
        let trust = try settings.trust(for: location)
        let password = try password ?? settings.password(for: location)
        return try ESXiSession(location: location, password: password, trust: trust, options: settings.session, warn: warn)
    }

    /// Every VM of the session's host, through the vSphere API (login, read, logout).
    public static func machines(_ session: ESXiSession, password: String) throws -> [VSphereVM] {
        let api = VSphereClient(session: session)
        try api.login(password: password)
        defer { api.logout() }
        return try api.virtualMachines()
    }

    /// A VM's disk (`disk`, 1-based, else the session location's `?disk=N`, else its only one)
    /// through the session, in the state `diskToRead` picks.
    public static func open(_ machine: VSphereVM, disk: Int? = nil, session: ESXiSession, allowRunning: Bool,
                            warn: @Sendable (String) -> Void, policy: SourcePolicy) throws -> OpenedSource {
        var location = session.location.with(.vm(name: machine.name))
        if let disk { location.disk = disk }
        let file = try diskToRead(machine, location, allowRunning: allowRunning, warn: warn)
        let (datastore, path) = try ESXiLocation.datastorePath(file, subject: location.display)
        return try DiskImage.open(source: path, files: ESXiDatastore(session: session, name: datastore), policy: policy)
    }

    /// The VM called `name`, or an error listing the VMs there are.
    static func machine(named name: String, in machines: [VSphereVM], _ location: ESXiLocation) throws -> VSphereVM {
        let found = machines.filter { $0.name == name }
        if found.count == 1, let only = found.first { return only }
        if found.count > 1 {
            let files = found.compactMap(\.vmxPath).joined(separator: ", ")
            throw ESXiError(.notFound, location.display, "\(found.count) VMs are called \"\(name)\"; name its .vmx instead (\(files))")
        }
        let names = machines.map(\.name).sorted()
        let listed = names.isEmpty ? "the host has no VM" : "VMs on the host: " + names.prefix(20).joined(separator: ", ") + (names.count > 20 ? ", …" : "")
        throw ESXiError(.notFound, location.display, "no VM called \"\(name)\" (\(listed))")
    }

    /// The `[datastore] path` of the disk to read: the one disk (or `?disk=N`), as it is now for
    /// a VM that is off; for a running VM, as its current snapshot left it (the parent the VM no
    /// longer writes), as it is now with `allowRunning`, or refused.
    public static func diskToRead(_ machine: VSphereVM, _ location: ESXiLocation, allowRunning: Bool,
                           warn: @Sendable (String) -> Void) throws -> String {
        let disks = machine.disks
        guard !disks.isEmpty else { throw ESXiError(.notFound, location.display, "VM \(machine.name) has no virtual disk") }
        let disk: VSphereVM.Disk
        if let n = location.disk {
            guard n <= disks.count else {
                throw ESXiError(.notFound, location.display, "VM \(machine.name) has \(disks.count) disk\(disks.count == 1 ? "" : "s"); disk=\(n) is not one")
            }
            disk = disks[n - 1]
        } else if disks.count == 1 {
            disk = disks[0]
        } else {
            let listed = disks.enumerated().map { "disk=\($0.offset + 1): \($0.element.label), \($0.element.fileName)" }.joined(separator: "; ")
            throw ESXiError(.notFound, location.display, "VM \(machine.name) has \(disks.count) disks (\(listed)); add ?disk=N to the URI")
        }
        if disk.encrypted {
            // The datastore holds what vSphere's key provider encrypted: read over /folder it is
            // ciphertext that would copy "verified" and never boot. Refuse before a byte is read.
            throw ESXiError(
                .encrypted, location.display,
                "\(disk.label) of VM \(machine.name) (\(disk.fileName)) is encrypted by vSphere: the datastore holds ciphertext. Decrypt the VM on the host first (VM Policies → Edit VM Storage Policies → Datastore Default, with the VM off), then run ferry again")
        }
        if machine.isPoweredOff { return disk.fileName }
        let state = machine.powerState == "suspended" ? "suspended" : "running"
        if allowRunning {
            warn("warning: VM \(machine.name) is \(state) (--force): its disk is read while it may change, so the copy is crash-consistent at best; only a copy made after shutdown is a migration")
            return disk.fileName
        }
        if !machine.snapshots.isEmpty, !disk.isIndependent, let frozen = disk.parents.first {
            warn("ferry: VM \(machine.name) is \(state): reading \(disk.label) as its current snapshot left it (\(frozen)); what the VM wrote since is not copied")
            return frozen
        }
        let why = disk.isIndependent ? "its disk is independent, so a snapshot does not freeze it" : "it has no snapshot to read instead"
        throw ESXiError(
            .inUse, location.display,
            "VM \(machine.name) is \(state) and \(why): a copy read while it writes would be inconsistent. Shut it down (or take a snapshot) and run ferry again, or pass --force to copy it as it is (crash-consistent at best)")
    }

    /// A VM's configuration read from the host, for `ferry plan --vmx esxi://…`: the .vmx's
    /// bytes (`esxi://USER@HOST/VM` or `…/[datastore] dir/vm.vmx`) and, for a VM named by name,
    /// an `esxi://` URI for each of its disks (`?disk=N`), system disk first.
    public func vmx(_ uri: String, maxBytes: Int) throws -> (bytes: [UInt8], disks: [String]) {
        let location = try ESXiLocation(parsing: uri)
        let password = try settings.password(for: location)
        let session = try connect(location, password: password)
        defer { session.close() }
        let datastore: String, path: String
        var disks: [String] = []
        switch location.target {
        case .file(let ds, let file):
            guard file.lowercased().hasSuffix(".vmx") else {
                throw ESXiError(.badName, location.display, "--vmx names a .vmx file or a VM, not \(file)")
            }
            (datastore, path) = (ds, file)
        case .vm(let name):
            let machine = try Self.machine(named: name, in: try Self.machines(session, password: password), location)
            guard let vmxPath = machine.vmxPath else { throw ESXiError(.notFound, location.display, "the host names no .vmx for VM \(name)") }
            (datastore, path) = try ESXiLocation.datastorePath(vmxPath, subject: location.display)
            let base = uri.split(separator: "?", maxSplits: 1)
            let query = base.count > 1 ? base[1].split(separator: "&").filter { !$0.lowercased().hasPrefix("disk=") }.joined(separator: "&") : ""
            disks = machine.disks.indices.map { "\(base[0])?" + (query.isEmpty ? "" : query + "&") + "disk=\($0 + 1)" }
        case .host:
            throw ESXiError(.badName, location.display, "--vmx names a VM or its .vmx, not a host")
        }
        let file = try ESXiFile(session: session, datastore: datastore, path: path)
        guard file.size <= UInt64(maxBytes) else {
            throw ESXiError(.protocolViolation, file.name, "a .vmx of \(file.size) bytes is not a VM configuration")
        }
        return (try file.readBytes(at: 0, count: Int(file.size)), disks)
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
