public import FerryBinary

/// What the vSphere API says about one VM: enough to list it, to pick its disks, and to refuse
/// reading a running one.
public struct VSphereVM: Sendable, Equatable, Codable {
    /// One virtual disk as the VM sees it now.
    public struct Disk: Sendable, Equatable, Codable {
        /// `Hard disk 1`.
        public var label: String
        /// The file the VM writes now, `[datastore] dir/web-000001.vmdk` under a snapshot.
        public var fileName: String
        /// The chain below it, newest first (`[datastore] dir/web.vmdk`): a running VM does not
        /// write these, so they hold the disk as its current snapshot left it.
        public var parents: [String]
        public var capacity: UInt64
        /// `persistent`, `independent_persistent`, `independent_nonpersistent`…
        public var mode: String
        /// The controller's type (`VirtualLsiLogicController`, `VirtualIDEController`…), if found.
        public var controller: String?
        /// The backing carries a `keyId`: the disk is encrypted by vSphere (VM encryption), and
        /// its bytes on the datastore are ciphertext.
        public var encrypted: Bool = false

        /// Independent disks are left out of snapshots: a snapshot does not freeze them.
        public var isIndependent: Bool { mode.hasPrefix("independent") }
    }

    /// The managed object id (`vm-42`, or a number on a standalone host).
    public var id: String
    public var name: String
    /// `poweredOn`, `poweredOff` or `suspended`.
    public var powerState: String
    public var guestFullName: String?
    public var guestId: String?
    /// `[datastore] dir/vm.vmx`.
    public var vmxPath: String?
    public var isTemplate: Bool
    public var cpus: Int?
    public var memoryMiB: Int?
    /// `bios` or `efi`.
    public var firmware: String?
    public var disks: [Disk]
    /// The VM has a virtual TPM (`VirtualTPM` device): its secrets (BitLocker keys, …) stay
    /// on the ESXi host and do not move with the disks.
    public var hasVirtualTPM: Bool = false
    /// Snapshot names, depth first.
    public var snapshots: [String]
    /// Bytes the VM's files take on its datastores, and what its thin disks could still grow by.
    public var committedBytes: UInt64?
    public var uncommittedBytes: UInt64?

    public var isPoweredOff: Bool { powerState == "poweredOff" }
    /// The disks' total virtual size.
    public var provisionedBytes: UInt64 { disks.reduce(0) { $0 + $1.capacity } }

    public init(id: String, name: String, powerState: String, disks: [Disk] = [], snapshots: [String] = []) {
        self.id = id
        self.name = name
        self.powerState = powerState
        self.disks = disks
        self.snapshots = snapshots
        isTemplate = false
    }

    /// Reads one `ObjectContent` of `RetrievePropertiesEx` (`<obj>` and `<propSet>`s).
    public init(_ object: XMLTree.Element, subject: String) throws {
        guard let id = object.child("obj")?.value, !id.isEmpty else {
            throw ESXiError(.protocolViolation, subject, "a VM without a managed object id in the property reply")
        }
        var values: [String: XMLTree.Element] = [:]
        for set in object.children("propSet") {
            guard let name = set.child("name")?.value, let value = set.child("val") else { continue }
            values[name] = value
        }
        guard let name = values["name"]?.value else {
            throw ESXiError(.protocolViolation, subject, "VM \(id) has no name in the property reply")
        }
        self.id = id
        self.name = name
        powerState = values["runtime.powerState"]?.value ?? "unknown"
        guestFullName = values["config.guestFullName"]?.value
        guestId = values["config.guestId"]?.value
        vmxPath = values["config.files.vmPathName"]?.value
        isTemplate = values["config.template"]?.value == "true"
        cpus = values["config.hardware.numCPU"].flatMap { Int($0.value) }
        memoryMiB = values["config.hardware.memoryMB"].flatMap { Int($0.value) }
        firmware = values["config.firmware"]?.value
        committedBytes = values["summary.storage.committed"].flatMap { UInt64($0.value) }
        uncommittedBytes = values["summary.storage.uncommitted"].flatMap { UInt64($0.value) }
        disks = Self.disks(values["config.hardware.device"])
        hasVirtualTPM = values["config.hardware.device"]?.children.contains { $0.attribute("type").map { XMLTree.local($0) == "VirtualTPM" } ?? false } ?? false
        snapshots = []
        if let tree = values["snapshot"] {
            func walk(_ list: [XMLTree.Element], depth: Int) {
                guard depth < 256 else { return }
                for item in list {
                    if let name = item.child("name")?.value { snapshots.append(name) }
                    walk(item.children("childSnapshotList"), depth: depth + 1)
                }
            }
            walk(tree.children("rootSnapshotList"), depth: 0)
        }
    }

    /// The `VirtualDisk`s of an `ArrayOfVirtualDevice`, with their controllers' types.
    static func disks(_ devices: XMLTree.Element?) -> [Disk] {
        guard let devices else { return [] }
        var controllers: [String: String] = [:]
        for device in devices.children {
            guard let key = device.child("key")?.value, let type = device.attribute("type") else { continue }
            if type.hasSuffix("Controller") { controllers[key] = String(XMLTree.local(type)) }
        }
        return devices.children.compactMap { device in
            guard let type = device.attribute("type"), XMLTree.local(type) == "VirtualDisk",
                let backing = device.child("backing"), let file = backing.child("fileName")?.value
            else { return nil }
            var parents: [String] = []
            var parent = backing.child("parent")
            while let at = parent, let name = at.child("fileName")?.value, parents.count < 256 {
                parents.append(name)
                parent = at.child("parent")
            }
            let bytes = device.child("capacityInBytes").flatMap { UInt64($0.value) }
                ?? device.child("capacityInKB").flatMap { UInt64($0.value) }.map { $0 * 1024 } ?? 0
            var disk = Disk(
                label: device.path("deviceInfo", "label")?.value ?? "disk \(device.child("key")?.value ?? "?")",
                fileName: file, parents: parents, capacity: bytes,
                mode: backing.child("diskMode")?.value ?? "persistent",
                controller: device.child("controllerKey").flatMap { controllers[$0.value] })
            disk.encrypted = backing.child("keyId") != nil
            return disk
        }
    }
}
