import FerryBinary
import FerryRegistry
import FerryTestSupport
import Foundation
import Testing

/// The oracle: the same `.reg` content merged by `hivexregedit --merge` and by `HiveEditor`
/// (through `RegFile`) into copies of the same hive; both results exported by
/// `hivexregedit --export` must agree key for key and value for value, and `hivexsh` must
/// visit every key of ferry's result without an error.
@Suite struct HiveWriterOracleTests {
    /// A `.reg` touching every writer path: new keys at several depths (each level its own
    /// section, as hivexregedit needs), every value type, replacement, deletion, big data.
    static func sampleReg(under parent: String) -> String {
        let big = (0..<40_000).map { String(format: "%02x", ($0 * 13) & 0xFF) }.joined(separator: ",")
        return """
            Windows Registry Editor Version 5.00

            [\(parent)\\viostor]
            "Start"=dword:00000000
            "Type"=dword:00000001
            "ErrorControl"=dword:00000001
            "Group"="SCSI miniport"
            "ImagePath"=hex(2):73,00,79,00,73,00,74,00,65,00,6d,00,33,00,32,00,00,00
            "Tiny"=hex:01,02,03
            "Quad"=hex(b):01,02,03,04,05,06,07,08
            "Multi"=hex(7):61,00,00,00,62,00,00,00,00,00
            "Big"=hex:\(big)
            @="the default"

            [\(parent)\\viostor\\Parameters]

            [\(parent)\\viostor\\Parameters\\PnpInterface]
            "5"=dword:00000001

            [\(parent)\\viostor]
            "Tiny"=-
            "Start"=dword:00000003
            "Say \\"hi\\""="C:\\\\path"

            """
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> ToolResult {
        let result = try Tools.run(tool, arguments)
        #expect(result.status == 0, "\(tool) \(arguments.joined(separator: " ")): \(result.stderr)")
        return result
    }

    /// `hivexregedit --export` as section → sorted value lines (hivex moves a replaced value to
    /// the end of the list, ferry keeps its place; the order of values carries no meaning).
    static func export(_ path: String) throws -> [String: [String]] {
        let text = try run("hivexregedit", ["--export", path, "\\"]).stdout
        var sections: [String: [String]] = [:]
        var current = ""
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("[") {
                current = line
                sections[current] = []
            } else if !current.isEmpty, !line.isEmpty {
                sections[current, default: []].append(line)
            }
        }
        return sections.mapValues { $0.sorted() }
    }

    /// Merges `reg` both ways into `hive` and compares; returns ferry's result.
    @discardableResult
    static func compare(_ hive: [UInt8], reg: String, name: String, maxLeafEntries: Int? = nil) throws -> [UInt8] {
        let dir = try TemporaryDirectory("hive-oracle")
        let theirs = dir.file("\(name).hivex"), ours = dir.file("\(name).ferry"), regPath = dir.file("\(name).reg")
        try Data(hive).write(to: URL(fileURLWithPath: theirs))
        try reg.write(toFile: regPath, atomically: true, encoding: .utf8)
        _ = try run("hivexregedit", ["--merge", theirs, regPath])

        var editor = try HiveEditor(bytes: hive)
        if let maxLeafEntries { editor.maxLeafEntries = maxLeafEntries }
        try RegFile(parsing: reg).apply(to: &editor)
        let result = editor.bytes()
        try Data(result).write(to: URL(fileURLWithPath: ours))

        let expected = try export(theirs), got = try export(ours)
        #expect(got.count == expected.count, "\(name): \(got.count) keys, hivex has \(expected.count)")
        for (section, lines) in expected.sorted(by: { $0.key < $1.key }) where got[section] != lines {
            Issue.record("\(name): \(section) differs:\n hivex \(lines.prefix(5))\n ferry \(got[section]?.prefix(5) ?? [])")
            break
        }
        for section in got.keys where expected[section] == nil {
            Issue.record("\(name): ferry has \(section), hivex does not")
            break
        }
        try walkWithHivexsh(ours, keys: Array(got.keys), dir: dir)
        return result
    }

    /// `hivexsh` changes into every key and lists its values.
    static func walkWithHivexsh(_ path: String, keys: [String], dir: TemporaryDirectory) throws {
        let script = keys.sorted().map { "cd \($0.dropFirst().dropLast())\nlsval\n" }.joined()
        let scriptPath = dir.file("walk.hivexsh")
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let walk = try run("hivexsh", ["-f", scriptPath, path])
        #expect(walk.stderr.isEmpty, "hivexsh: \(walk.stderr.prefix(300))")
    }

    @Test func mergeMatchesHivexOnBuiltHives() throws {
        guard Tools.require("hivexregedit", "hivexsh", why: "the registry oracle") else { return }
        for minor: UInt32 in [3, 5] {
            let hive = RegistryTests.sampleBuilder(minor: minor).build()
            try Self.compare(hive, reg: Self.sampleReg(under: "\\ControlSet001\\Services"), name: "sample-minor\(minor)")
        }
        // Deleting keys (one with subkeys and values) and replacing existing values.
        let deletes = """
            Windows Registry Editor Version 5.00

            [-\\ControlSet001\\Many\\Key3]

            [-\\ControlSet001\\Services]

            [\\Select]
            "Current"=dword:00000002
            "Default"=dword:00000001

            """
        try Self.compare(RegistryTests.sampleBuilder().build(), reg: deletes, name: "deletes")
    }

    /// Thousands of keys; a parent whose leaf fills past 1012 entries and splits into an ri.
    @Test func mergeMatchesHivexOnLargeHives() throws {
        guard Tools.require("hivexregedit", "hivexsh", why: "the registry oracle") else { return }
        var builder = HiveBuilder(minorVersion: 5)
        for i in 0..<3000 { builder.set("Wide\\P\(i % 6)\\K\(i)", "N", .dword(UInt32(i))) }
        for i in 0..<1000 { builder.addKey("Full\\E\(String(format: "%04d", i * 2))") }
        var reg = "Windows Registry Editor Version 5.00\n\n"
        for i in 0..<120 { reg += "[\\Full\\E\(String(format: "%04d", i * 16 + 1))]\n\"V\"=dword:\(String(format: "%08x", i))\n\n" }
        reg += "[\\Wide\\P3\\K9]\n\"N\"=-\n\"S\"=\"replaced\"\n\n"
        let out = try Self.compare(builder.build(), reg: reg, name: "large")
        let hive = try Hive(bytes: out)
        let full = try #require(try hive.key("Full"))
        #expect(try hive.subkeyLeaves(of: full).count == 2, "1120 entries split into two leaves under an ri")
    }

    /// A 120-level deep path, and a hive with no free space at all (every bin full).
    @Test func mergeMatchesHivexOnDeepAndFullHives() throws {
        guard Tools.require("hivexregedit", "hivexsh", why: "the registry oracle") else { return }
        let deep = (0..<120).map { "L\($0)" }
        var builder = HiveBuilder(minorVersion: 5)
        builder.set(deep.joined(separator: "\\"), "Depth", .dword(120))
        var reg = "Windows Registry Editor Version 5.00\n\n"
        var path = "\\" + deep.joined(separator: "\\")
        for i in 0..<10 {
            path += "\\M\(i)"
            reg += "[\(path)]\n\"At\"=dword:\(String(format: "%08x", i))\n\n"
        }
        try Self.compare(builder.build(), reg: reg, name: "deep")

        let packed = Self.withoutFreeSpace(RegistryTests.sampleBuilder().build())
        let before = try HiveEditor(bytes: packed).hiveBinsSize
        let out = try Self.compare(packed, reg: Self.sampleReg(under: "\\ControlSet001\\Services"), name: "full")
        #expect(try Hive(bytes: out).baseBlock.hiveBinsDataSize > before)
    }

    /// hivex's `images/minimal` (a hive cut down from Windows 2003, in shared/fixtures beside the
    /// checkout): ferry fits the edit into its free cells, hivex appends an hbin; the exports agree.
    @Test func mergeMatchesHivexOnHivexMinimalHive() throws {
        guard Tools.require("hivexregedit", "hivexsh", why: "the registry oracle") else { return }
        let (found, candidates) = GuestTools.sharedFixture("minimal.hive")
        guard let data = found else {
            Skip.because("shared/fixtures/minimal.hive not present (looked at \(candidates))")
            return
        }
        let reg = "Windows Registry Editor Version 5.00\n\n[\\ControlSet001]\n\n[\\ControlSet001\\Services]\n\n"
            + Self.sampleReg(under: "\\ControlSet001\\Services").replacingOccurrences(of: "Windows Registry Editor Version 5.00\n", with: "")
        let out = try Self.compare(Array(data), reg: reg, name: "minimal")
        #expect(try Hive(bytes: out).value(at: "ControlSet001\\Services\\viostor", "Start") == .dword(3))
    }

    /// Marks every free cell allocated (unreferenced allocated cells are legal), so the first
    /// allocation must append an hbin.
    static func withoutFreeSpace(_ hive: [UInt8]) -> [UInt8] {
        var bytes = hive
        let binsEnd = 4096 + Int(bytes.littleEndian(UInt32.self, at: 40) ?? 0)
        var bin = 4096
        while bin < binsEnd {
            let binSize = Int(bytes.littleEndian(UInt32.self, at: bin + 8) ?? 4096)
            var cell = bin + 32
            while cell < bin + binSize {
                let size = Int32(bitPattern: bytes.littleEndian(UInt32.self, at: cell) ?? 0)
                if size > 0 { bytes.replaceSubrange(cell..<cell + 4, with: withUnsafeBytes(of: (-size).littleEndian, Array.init)) }
                cell += Int(size.magnitude)
            }
            bin += binSize
        }
        return bytes
    }
}

extension GuestTools {
    /// A file of shared/fixtures, which lies beside the checkout (CI's clone too) and at
    /// /work/shared on the project's machines; nil (with the places looked at) when absent.
    static func sharedFixture(_ name: String) -> (data: Data?, candidates: [String]) {
        let beside = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/\(name)").path
        let candidates = [beside, "/work/shared/fixtures/\(name)"]
        let data = candidates.lazy.compactMap { FileManager.default.contents(atPath: $0) }.first
        return (data, candidates)
    }
}
