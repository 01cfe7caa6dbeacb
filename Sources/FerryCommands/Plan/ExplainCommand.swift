public import ArgumentParser
import FerryTarget
import Foundation

/// `ferry explain CODE`: what a boot error of a migrated guest means, which inspect verdict
/// tells its causes apart, and the fix in ferry's terms.
public struct ExplainCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain a boot error of a migrated guest (0x7B, 0x0A, \"NTLDR is missing\", GRUB rescue…) and its fix.",
        discussion: """
            CODE is a STOP code (0x7B, 0x0000007B, INACCESSIBLE_BOOT_DEVICE) or the message's words \
            ("A disk read error occurred"). --list shows every entry. An unknown code exits with 64.

            Example: what a blue screen with STOP 0x0000007B means after a migration, and its fix:
              ferry explain 0x7B
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "The STOP code or the message.")
    public var code: [String] = []

    @Flag(help: "List every boot error ferry explains.")
    public var list = false

    @Flag(help: "Print the entry as JSON.")
    public var json = false

    public init() {}

    public func validate() throws {
        if !list, code.isEmpty { throw ValidationError("give a code (e.g. 0x7B) or --list") }
    }

    public func run() throws {
        let entries: [BootError]
        if list {
            entries = BootError.catalogue
        } else {
            let query = code.joined(separator: " ")
            guard let entry = BootError.lookup(query) else {
                throw ValidationError("no boot error \"\(query)\" is known; `ferry explain --list` shows them")
            }
            entries = [entry]
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(list ? entries : [entries[0]]), as: UTF8.self))
            return
        }
        if list {
            for e in entries { print("\(e.code.padding(toLength: 26, withPad: " ", startingAt: 0)) \(e.title)") }
            return
        }
        let e = entries[0]
        var out = "\(e.title)\n\nCauses:\n"
        out += e.causes.map { "  - \($0)\n" }.joined()
        out += "\nTell them apart with `ferry inspect DISK` (verdicts \(e.verdicts.joined(separator: ", ")))\n\nFix:\n"
        out += e.fix.map { "  - \($0)\n" }.joined()
        print(out, terminator: "")
    }
}
