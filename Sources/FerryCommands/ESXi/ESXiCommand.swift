public import ArgumentParser
import FerryCopy
import FerryESXi
import FerryFormats
import FerryGuest
import Synchronization
import Foundation

/// `ferry esxi …`: an ESXi host seen through its vSphere API, from the KVM side.
public struct ESXiCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "esxi",
        abstract: "An ESXi host seen through its vSphere API: its VMs, their disks and power state.",
        discussion: """
            Every command that reads a source also takes esxi://USER@HOST/VM (a VM by name) and \
            esxi://USER@HOST/[datastore] dir/disk.vmdk (see docs/esxi.md).

            Examples:
              ferry esxi ls root@esx1 --password-file /root/esx1.pw
              ferry esxi report root@esx1 --password-file /root/esx1.pw --json
            """ + "\n\n" + FerryExit.helpLine,
        subcommands: [ESXiListCommand.self, ESXiReportCommand.self])

    public init() {}
}

/// The host a `ferry esxi` command talks to, and the flags that say how.
public struct ESXiHostOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("The host: USER@HOST[:PORT] or esxi://USER@HOST[:PORT][?fingerprint=…].", valueName: "USER@HOST"))
    public var host: String

    @OptionGroup public var esxi: ESXiOptions

    public init() {}

    /// The host's location, a session to it, and the password (for the SOAP login).
    func connect() throws -> (ESXiLocation, ESXiSession, String) {
        let location = try ESXiLocation(parsingHost: host)
        let settings = try esxi.esxiSettings()
        let password = try settings.password(for: location)
        return (location, try ESXiScheme(settings: settings).connect(location, password: password), password)
    }
}

/// `ferry esxi ls USER@HOST`: the VMs with power state, guest OS, disks, sizes and snapshots.
public struct ESXiListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the VMs of an ESXi host: power state, guest OS, disks, allocated and provisioned size, snapshots.",
        discussion: """
            Read-only vSphere API calls (Login, RetrievePropertiesEx), which the free ESXi licence allows.

            Example:
              ferry esxi ls root@esx1 --password-file /root/esx1.pw --esxi-fingerprint 44:8F:…
            """ + "\n\n" + FerryExit.helpLine)

    @OptionGroup public var target: ESXiHostOptions

    @Flag(help: "Print the VMs as JSON.")
    public var json = false

    public init() {}

    public func run() throws {
        let (location, session, password) = try target.connect()
        defer { session.close() }
        let api = VSphereClient(session: session)
        let content = try api.serviceContent()
        try api.login(password: password)
        defer { api.logout() }
        let machines = try api.virtualMachines()
        if json {
            struct Listing: Encodable {
                var host: String
                var product: String
                var apiVersion: String
                var vms: [VSphereVM]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let listing = Listing(host: location.display, product: content.fullName, apiVersion: content.apiVersion, vms: machines)
            print(String(decoding: try encoder.encode(listing), as: UTF8.self))
            return
        }
        print(Self.table(machines, host: location.display, product: content.fullName))
    }

    /// The listing as a person reads it: one line per VM, then one indented line per disk.
    static func table(_ machines: [VSphereVM], host: String, product: String) -> String {
        var lines = ["\(host): \(product), \(machines.count) VM\(machines.count == 1 ? "" : "s")"]
        let power = ["poweredOn": "on", "poweredOff": "off", "suspended": "suspended"]
        var rows = [["VM", "POWER", "GUEST", "DISKS", "ALLOCATED", "PROVISIONED", "SNAPSHOTS"]]
        var disks: [[String]] = []
        for vm in machines {
            rows.append([
                vm.name + (vm.isTemplate ? " (template)" : ""), power[vm.powerState] ?? vm.powerState,
                vm.guestFullName ?? vm.guestId ?? "?", "\(vm.disks.count)",
                vm.committedBytes.map(ByteCount.format) ?? "?", ByteCount.format(vm.provisionedBytes),
                vm.snapshots.isEmpty ? "0" : "\(vm.snapshots.count) (\(vm.snapshots.joined(separator: ", ")))",
            ])
            disks.append(vm.disks.enumerated().map { n, d in
                "    disk=\(n + 1) \(d.label): \(d.fileName), \(ByteCount.format(d.capacity)), \(d.mode)"
                    + (d.controller.map { ", \($0)" } ?? "") + (d.parents.isEmpty ? "" : ", over \(d.parents.count) parent\(d.parents.count == 1 ? "" : "s")")
            })
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        func render(_ row: [String]) -> String {
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        lines.append(render(rows[0]))
        for (row, diskLines) in zip(rows.dropFirst(), disks) {
            lines.append(render(row))
            lines += diskLines
        }
        return lines.joined(separator: "\n")
    }
}

/// `ferry esxi report USER@HOST`: every VM's guest inspected over ranged reads (metadata only),
/// with what a migration weekend is planned with.
public struct ESXiReportCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "A pre-flight report of every VM on an ESXi host: guest OS, boot verdicts on IDE and VirtIO, snapshots, independent disks, data to move.",
        discussion: """
            Reads only the guests' metadata (partition tables, file system and registry structures: \
            a few MiB per disk) through /folder, read-only. A running VM is read through its \
            snapshot when it has one, else as it is (the report says so). Exit status 0 even when \
            verdicts fail; a disk that cannot be read is named in the report.

            Example:
              ferry esxi report root@esx1 --password-file /root/esx1.pw --esxi-fingerprint 44:8F:…
            """ + "\n\n" + FerryExit.helpLine)

    @OptionGroup public var target: ESXiHostOptions

    @Flag(help: "Print the report as JSON.")
    public var json = false

    public init() {}

    /// One disk of one VM as inspected.
    struct DiskReport: Encodable {
        var disk: Int
        var file: String
        /// The file read (a running VM's snapshot parent, or `file`).
        var read: String?
        var capacity: UInt64
        var mode: String
        var guest: String?
        var verdicts: [Verdict]
        var error: String?
    }

    struct MachineReport: Encodable {
        var name: String
        var powerState: String
        var guest: String?
        var firmware: String?
        var snapshots: [String]
        var independentDisks: [String]
        var encryptedDisks: [String]
        var virtualTPM: Bool
        var committedBytes: UInt64?
        var provisionedBytes: UInt64
        var disks: [DiskReport]
        var notes: [String]
    }

    public func run() throws {
        let (location, session, password) = try target.connect()
        defer { session.close() }
        let machines = try ESXiScheme.machines(session, password: password)
        let reports = machines.map { Self.report($0, session: session) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
        } else {
            print(Self.text(reports, host: location.display))
        }
    }

    static let bootVerdicts = ["boot-ide", "boot-virtio-blk", "boot-virtio-scsi"]

    static func report(_ vm: VSphereVM, session: ESXiSession) -> MachineReport {
        var notes: [String] = []
        if !vm.isPoweredOff {
            notes.append(vm.snapshots.isEmpty
                ? "\(vm.powerState): disks read as they are now; shut it down before the copy"
                : "\(vm.powerState): disks read as the current snapshot left them; shut it down before the final copy")
        }
        if !vm.snapshots.isEmpty { notes.append("\(vm.snapshots.count) snapshot\(vm.snapshots.count == 1 ? "" : "s"): ferry copies the current state; consolidate them to free the datastore") }
        let independent = vm.disks.filter(\.isIndependent).map(\.fileName)
        if !independent.isEmpty { notes.append("independent disks are not in snapshots: copy them with the VM off") }
        let encrypted = vm.disks.filter(\.encrypted).map(\.fileName)
        if !encrypted.isEmpty {
            notes.append("encrypted by vSphere (\(encrypted.joined(separator: ", "))): the datastore holds ciphertext; decrypt the VM on the host (remove its encryption policy) before the copy")
        }
        if vm.hasVirtualTPM {
            notes.append("has a virtual TPM: its keys (BitLocker, Windows Hello) stay on this host; suspend BitLocker or record its recovery key before the move")
        }
        var disks: [DiskReport] = []
        for (n, disk) in vm.disks.enumerated() {
            var entry = DiskReport(disk: n + 1, file: disk.fileName, capacity: disk.capacity, mode: disk.mode, verdicts: [])
            if disk.encrypted {
                entry.error = "encrypted by vSphere: not read (ciphertext)"
                disks.append(entry)
                continue
            }
            do {
                let read = Mutex<String?>(nil)
                let opened = try ESXiScheme.open(
                    vm, disk: n + 1, session: session, allowRunning: vm.snapshots.isEmpty || disk.isIndependent,
                    warn: { line in if line.contains("current snapshot") { read.withLock { $0 = disk.parents.first } } }, policy: SourcePolicy())
                defer { try? opened.disk.close() }
                entry.read = read.withLock { $0 } ?? disk.fileName
                let inspection = try GuestInspector.inspect(opened.disk)
                if let w = inspection.windows {
                    entry.guest = "\(w.productName ?? "Windows") \(w.version ?? "")".trimmingCharacters(in: .whitespaces)
                        + (w.servicePack.map { ", \($0)" } ?? "") + (w.architecture.map { ", \($0)" } ?? "") + (w.hal.map { ", HAL \($0)" } ?? "")
                } else if let volume = inspection.volume {
                    entry.guest = volume.type
                } else {
                    entry.guest = inspection.partitions.isEmpty ? nil : inspection.partitions.map(\.filesystem).joined(separator: ", ")
                }
                entry.verdicts = inspection.verdicts.filter { !$0.ok || bootVerdicts.contains($0.id) }
            } catch {
                entry.error = "\(error)"
            }
            disks.append(entry)
        }
        return MachineReport(
            name: vm.name, powerState: vm.powerState, guest: vm.guestFullName ?? vm.guestId, firmware: vm.firmware, snapshots: vm.snapshots,
            independentDisks: independent, encryptedDisks: encrypted, virtualTPM: vm.hasVirtualTPM, committedBytes: vm.committedBytes, provisionedBytes: vm.provisionedBytes, disks: disks, notes: notes)
    }

    static func text(_ reports: [MachineReport], host: String) -> String {
        var lines = ["\(host): \(reports.count) VM\(reports.count == 1 ? "" : "s")"]
        for r in reports {
            lines.append("")
            lines.append("\(r.name): \(r.powerState), \(r.guest ?? "unknown guest")\(r.firmware.map { ", \($0)" } ?? ""); "
                + "data to move \(r.committedBytes.map(ByteCount.format) ?? "?") of \(ByteCount.format(r.provisionedBytes)) provisioned")
            for d in r.disks {
                lines.append("  disk=\(d.disk) \(d.file) (\(ByteCount.format(d.capacity)), \(d.mode))" + (d.read.flatMap { $0 == d.file ? nil : ", read as \($0)" } ?? ""))
                if let error = d.error {
                    lines.append("    cannot inspect: \(error)")
                    continue
                }
                lines.append("    guest: \(d.guest ?? "no operating system found")")
                for v in d.verdicts {
                    lines.append("    \(v.ok ? "ok" : v.severity.rawValue) \(v.id): \(v.reason)" + (v.ok || v.fix.isEmpty ? "" : " (fix: \(v.fix))"))
                }
            }
            for note in r.notes { lines.append("  note: \(note)") }
        }
        return lines.joined(separator: "\n")
    }
}
