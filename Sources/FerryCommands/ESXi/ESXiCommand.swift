public import ArgumentParser
import FerryCopy
import FerryESXi
import Foundation

/// `ferry esxi …`: an ESXi host seen through its vSphere API, from the KVM side.
public struct ESXiCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "esxi",
        abstract: "An ESXi host seen through its vSphere API: its VMs, their disks and power state.",
        discussion: """
            Every command that reads a source also takes esxi://USER@HOST/VM (a VM by name) and \
            esxi://USER@HOST/[datastore] dir/disk.vmdk (see docs/esxi.md).
            """,
        subcommands: [ESXiListCommand.self])

    public init() {}
}

/// `ferry esxi ls USER@HOST`: the VMs with power state, guest OS, disks, sizes and snapshots.
public struct ESXiListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the VMs of an ESXi host: power state, guest OS, disks, allocated and provisioned size, snapshots.",
        discussion: """
            Read-only vSphere API calls (Login, RetrievePropertiesEx), which the free ESXi licence allows.

            Example:
              FERRY_ESXI_PASSWORD_FILE=/root/esx1.pw ferry esxi ls root@esx1 --esxi-fingerprint 44:8F:…
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: ArgumentHelp("The host: USER@HOST[:PORT] or esxi://USER@HOST[:PORT][?fingerprint=…].", valueName: "USER@HOST"))
    public var host: String

    @Flag(help: "Print the VMs as JSON.")
    public var json = false

    @OptionGroup public var esxi: ESXiOptions

    public init() {}

    public func run() throws {
        let location = try ESXiLocation(parsingHost: host)
        let settings = try esxi.esxiSettings()
        let scheme = ESXiScheme(settings: settings)
        let password = try settings.password(for: location)
        let session = try scheme.connect(location, password: password)
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
