import FerryDisk
import FerryESXi
import FerryFormats
import FerryGuest
import FerryTarget
import Foundation

/// The glue of `ferry plan`: read the .vmx, open and inspect the disks, plan, render.
enum PlanFrontEnd {
    struct Result: Encodable {
        var target: TargetKind
        var plan: TargetPlan
        var machine: SourceMachine?
        var guest: GuestFacts?
        var configuration: String
        var warnings: [String]

        var text: String {
            var out = "ferry plan: \(plan.name) on \(target.rawValue)\n"
            let width = plan.choices.map(\.setting.count).max() ?? 0
            for c in plan.choices {
                out += "  \(c.setting.padding(toLength: width, withPad: " ", startingAt: 0))  \(c.value)\(c.guess ? " (guess)" : "")\n"
                out += "  \(String(repeating: " ", count: width))    because \(c.reason)\n"
            }
            if let other = machine?.otherKeys, !other.isEmpty {
                let names = other.prefix(8).map(\.key).joined(separator: ", ")
                out += "  .vmx keys not used: \(other.count) (\(names)\(other.count > 8 ? ", …" : "")); --json lists them all\n"
            }
            for w in warnings { out += "warning: \(w)\n" }
            out += "\n" + configuration
            return out
        }
    }

    static func plan(vmx: String?, disks: [String], target: TargetKind, options: RenderOptions, policy: SourcePolicy) throws -> Result {
        var warnings: [String] = []
        var machine: SourceMachine?
        var fatal: (any Error)?
        var disks = disks
        if let vmx {
            do {
                let bytes: [UInt8]
                if DiskSchemes.uriScheme(of: vmx) == "esxi", let esxi = try DiskSchemes.scheme(for: vmx) as? ESXiScheme {
                    let read = try esxi.vmx(vmx, maxBytes: VMX.Limits.maxBytes)
                    bytes = read.bytes
                    // A VM named by name brings its disks: read them from the host unless named.
                    if disks.isEmpty { disks = read.disks }
                } else {
                    bytes = try readVMX(vmx)
                }
                machine = try SourceMachine(vmxBytes: bytes)
            } catch {
                warnings.append("the .vmx could not be used: \(error)")
                fatal = error
            }
        }
        var given: [Planner.GivenDisk] = []
        var guest: GuestFacts?
        for (i, path) in disks.enumerated() {
            do {
                let opened = try DiskImage.open(source: path, policy: policy)
                defer { try? opened.disk.close() }
                let format = opened.chain.images.first?.format.rawValue ?? "raw"
                given.append(Planner.GivenDisk(path: absolute(path), format: format, size: opened.disk.size))
                if opened.chain.images.count > 1 {
                    warnings.append("\(path) is a chain of \(opened.chain.images.count) images (\(opened.chain)): the target must see every file of it, or run a flattened copy (`ferry copy \(path) TARGET`)")
                } else if !["raw", "qcow2"].contains(format) {
                    warnings.append("\(path) is a \(format) image: Ganeti and most KVM setups want raw or qcow2; `ferry copy \(path) TARGET` converts it")
                }
                if i == 0 {
                    do {
                        guest = GuestFacts(try GuestInspector.inspect(opened.disk))
                    } catch {
                        warnings.append("\(path): inspect could not read the guest: \(error)")
                    }
                }
            } catch {
                warnings.append("\(path) could not be opened: \(error); its format is guessed as raw")
                given.append(Planner.GivenDisk(path: absolute(path), format: "raw"))
                if fatal == nil { fatal = error }
            }
        }
        if machine == nil, guest == nil, given.allSatisfy({ $0.size == nil }) {
            // Nothing at all to plan from: the one case that fails.
            throw fatal ?? DiskError(.notFound, vmx ?? "(none)", operation: "open", "give --vmx VM.vmx and/or the VM's disks")
        }
        let vmxDirectory = vmx.map { (absolute($0) as NSString).deletingLastPathComponent }
        var plan = Planner.plan(machine: machine, guest: guest, disks: given, vmxDirectory: vmxDirectory, warnings: warnings)
        plan.warnings += target.limits(plan)
        return Result(target: target, plan: plan, machine: machine, guest: guest, configuration: target.render(plan, options), warnings: plan.warnings)
    }

    /// Targets want absolute paths (libvirt's schema requires them).
    static func absolute(_ path: String) -> String {
        // A URI (esxi://, nbd://) names no local file: it stays as it is.
        path.hasPrefix("/") || DiskSchemes.uriScheme(of: path) != nil ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// The .vmx's bytes, refusing more than the parser's limit without reading it all.
    static func readVMX(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw DiskError(exists ? (isDirectory.boolValue ? .isDirectory : .permissionDenied) : .notFound, path, operation: "open",
                exists ? "cannot read the .vmx" : "no such file")
        }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: VMX.Limits.maxBytes + 1) ?? Data()
        return Array(data)
    }
}
