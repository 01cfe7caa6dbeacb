public import ArgumentParser
import FerryDisk
import FerryFormats
import FerryGuest
import FerryTarget
import Foundation

extension TargetKind: ExpressibleByArgument {}

/// `ferry plan --vmx VM.vmx [DISK…] --target …`: the target VM's configuration, from the
/// .vmx and the guest on the disks, with the reason for every setting (docs/plan.md).
public struct PlanCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Write the target VM's configuration (Ganeti, libvirt, Proxmox, QEMU) from the .vmx and the guest's disks.",
        discussion: """
            Reads the .vmx and inspects the first disk (read-only) for the guest facts; prints every choice with its reason, \
            the warnings, then the configuration. A missing fact makes a choice a guess, marked as such; the exit status is \
            non-zero only when no plan can be made at all.

            Example: the Ganeti instance for the received disk of a VMware VM:
              ferry plan --vmx win2003.vmx /dev/vg0/win2003 --target ganeti
            """ + "\n\n" + FerryExit.helpLine)

    @Option(help: ArgumentHelp("The VMware configuration of the VM.", valueName: "VM.vmx"))
    public var vmx: String?

    @Argument(help: "The VM's disks, system disk first: local images or the targets ferry received them into.")
    public var disks: [String] = []

    @Option(help: "The hypervisor to write for: ganeti, libvirt, proxmox or qemu.")
    var target: TargetKind

    @Flag(help: "Print the plan, its reasons and the configuration as JSON.")
    public var json = false

    @Option(help: "The bridge the NICs join (Ganeti link=, libvirt/QEMU/Proxmox bridge).")
    public var bridge: String?

    @Option(name: .customLong("ganeti-node"), help: "Ganeti: the node to create the instance on (-n).")
    public var ganetiNode: String?

    @Option(name: .customLong("ganeti-os"), help: "Ganeti: the OS definition (-o; never run, --no-install).")
    public var ganetiOS = "noop"

    @Option(help: "Proxmox: the VM id.")
    public var vmid = 100

    @Option(help: "Proxmox: the storage the disks are imported into.")
    public var storage = "local-lvm"

    @OptionGroup public var sourceOptions: SourceOptions

    public init() {}

    public func run() throws {
        var options = RenderOptions(bridge: bridge)
        options.ganetiNode = ganetiNode
        options.ganetiOS = ganetiOS
        options.proxmoxVMID = vmid
        options.proxmoxStorage = storage
        let result = try PlanFrontEnd.plan(vmx: vmx, disks: disks, target: target, options: options, policy: sourceOptions.policy)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(result.text, terminator: "")
        }
    }
}
