import FerryBinary
import FerryRegistry
import FerryTestSupport
import Foundation
import Testing

@Suite struct RegistryTests {
    /// A hive with the shapes a SYSTEM hive has, plus the rarer records (ri, db, UTF-16 names).
    static func sampleBuilder(minor: UInt32 = 5) -> HiveBuilder {
        var b = HiveBuilder(rootName: "ROOT", minorVersion: minor, maxLeafEntries: 4)
        b.set("Select", "Current", .dword(1))
        b.set("ControlSet001\\Services\\atapi", "Start", .dword(0))
        b.set("ControlSet001\\Services\\atapi", "ImagePath", .expandString("System32\\DRIVERS\\atapi.sys"))
        b.set("ControlSet001\\Services\\atapi", "Group", .string("SCSI miniport"))
        b.set("ControlSet001\\Enum\\Root\\ACPI_HAL\\0000", "HardwareID", .multiString(["acpiapic_mp"]))
        b.set("ControlSet001\\Control", "Big", .binary((0..<40000).map { UInt8(truncatingIfNeeded: $0 * 7) }))
        b.set("ControlSet001\\Control", "Q", .qword(0x1122_3344_5566_7788))
        b.set("ControlSet001\\Control", "Ünïcode✓", .string("ḧello"))
        for i in 0..<10 { b.set("ControlSet001\\Many\\Key\(i)", "N", .dword(UInt32(i))) }
        b.addKey("ControlSet001\\Καλημέρα")
        return b
    }

    @Test func readsWhatTheBuilderWrote() throws {
        let hive = try Hive(bytes: Self.sampleBuilder().build())
        #expect(!hive.isDirty)
        #expect(try hive.value(at: "Select", "Current") == .dword(1))
        #expect(try hive.value(at: "controlset001\\SERVICES\\Atapi", "start") == .dword(0))
        #expect(try hive.value(at: "ControlSet001\\Services\\atapi", "ImagePath")?.string == "System32\\DRIVERS\\atapi.sys")
        #expect(try hive.value(at: "ControlSet001\\Enum\\Root\\ACPI_HAL\\0000", "HardwareID") == .multiString(["acpiapic_mp"]))
        #expect(try hive.value(at: "ControlSet001\\Control", "Q") == .qword(0x1122_3344_5566_7788))
        #expect(try hive.value(at: "ControlSet001\\Control", "Ünïcode✓") == .string("ḧello"))
        let big = try hive.value(at: "ControlSet001\\Control", "Big")
        #expect(big == .binary((0..<40000).map { UInt8(truncatingIfNeeded: $0 * 7) }))
        // 10 subkeys in leaves of 4: an ri list of three lh leaves, sorted.
        let many = try #require(try hive.key("ControlSet001\\Many"))
        let names = try hive.subkeys(of: many).map(\.name)
        #expect(names == (0..<10).map { "Key\($0)" }.sorted { $0.uppercased() < $1.uppercased() })
        #expect(try hive.value(at: "ControlSet001\\Many\\Key7", "N") == .dword(7))
        #expect(try hive.key("ControlSet001\\καλημέρα") != nil)
        #expect(try hive.key("ControlSet001\\Missing") == nil)
    }

    @Test func lfListsForOldMinorVersions() throws {
        let bytes = Self.sampleBuilder(minor: 3).build()
        let hive = try Hive(bytes: bytes)
        #expect(hive.baseBlock.minorVersion == 3)
        #expect(try hive.value(at: "ControlSet001\\Services\\atapi", "Start") == .dword(0))
        let root = try hive.rootKey()
        let list = try SubkeyList(parsing: hive.cell(at: root.subkeyList, "list"), cellOffset: root.subkeyList)
        #expect(list.kind == .lf)
    }

    /// hivex reads what the builder writes: an independent check of the builder and the reader.
    @Test func hivexAgreesWithBuilderAndReader() throws {
        guard GuestTools.require("hivexget", "hivexregedit") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("system").path
        try Data(Self.sampleBuilder().build()).write(to: URL(fileURLWithPath: path))
        let start = try GuestTools.run("hivexget", [path, "\\ControlSet001\\Services\\atapi", "Start"])
        #expect(start.status == 0)
        #expect(start.text.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        let image = try GuestTools.run("hivexget", [path, "\\ControlSet001\\Services\\atapi", "ImagePath"])
        #expect(image.text.trimmingCharacters(in: .whitespacesAndNewlines) == "System32\\DRIVERS\\atapi.sys")
        let key7 = try GuestTools.run("hivexget", [path, "\\ControlSet001\\Many\\Key7", "N"])
        #expect(key7.text.trimmingCharacters(in: .whitespacesAndNewlines) == "7")
        // hivexsh, scripted: the key's values as hivex lists them.
        let script = dir.appendingPathComponent("cmds").path
        try "cd \\ControlSet001\\Services\\atapi\nlsval\n".write(toFile: script, atomically: true, encoding: .utf8)
        if GuestTools.require("hivexsh") {
            let shell = try GuestTools.run("hivexsh", ["-f", script, path])
            #expect(shell.status == 0, "\(shell.stderr)")
            #expect(shell.text.contains("\"Start\"=dword:00000000"))
            #expect(shell.text.contains("\"Group\"=\"SCSI miniport\""))
        }
        let export = try GuestTools.run("hivexregedit", ["--export", path, "\\"])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.text.contains("[\\ControlSet001\\Many\\Key9]"))
        #expect(export.text.contains("\"Q\"=hex(b):88,77,66,55,44,33,22,11"))
        // Big data: hivex returns all 40000 bytes.
        let bigLine = export.text.split(separator: "\n").first { $0.hasPrefix("\"Big\"=hex(3):00,07,0e,15") }
        #expect(bigLine?.split(separator: ",").count == 40000)
    }

    /// Round trip through hivex's own writer: merge a .reg into our hive, read the result.
    @Test func readsHivesWrittenByHivex() throws {
        guard GuestTools.require("hivexregedit") else { return }
        let dir = try GuestTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sys").path
        var b = HiveBuilder()
        b.addKey("ControlSet001")
        try Data(b.build()).write(to: URL(fileURLWithPath: path))
        let reg = dir.appendingPathComponent("in.reg").path
        try """
            Windows Registry Editor Version 5.00

            [\\ControlSet001\\Services]

            [\\ControlSet001\\Services\\viostor]
            "Start"=dword:00000000
            "ImagePath"=hex(2):73,00,79,00,73,00,00,00

            """.write(toFile: reg, atomically: true, encoding: .utf8)
        let merge = try GuestTools.run("hivexregedit", ["--merge", path, reg])
        #expect(merge.status == 0, "\(merge.stderr)")
        let hive = try Hive(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(try hive.value(at: "ControlSet001\\Services\\viostor", "Start") == .dword(0))
        #expect(try hive.value(at: "ControlSet001\\Services\\viostor", "ImagePath") == .expandString("sys"))
        #expect(!hive.isDirty)
    }

    @Test func hivexMinimalHiveCrossCheck() throws {
        let (found, candidates) = GuestTools.sharedFixture("minimal.hive")
        guard let data = found else {
            Skip.because("hivexMinimalHiveCrossCheck: shared/fixtures/minimal.hive not present (looked at \(candidates))")
            return
        }
        let hive = try Hive(bytes: Array(data))
        #expect(!hive.isDirty)
        #expect(try hive.subkeys(of: hive.rootKey()).isEmpty)
    }

    @Test func dirtyStateFromSequenceNumbersAndChecksum() throws {
        var b = Self.sampleBuilder()
        b.dirty = true
        #expect(try Hive(bytes: b.build()).isDirty)
        var bytes = Self.sampleBuilder().build()
        bytes[100] ^= 0xFF  // inside the checksummed area
        let hive = try Hive(bytes: bytes)
        #expect(!hive.checksumValid)
        #expect(hive.isDirty)
    }

    @Test func baseBlockRoundTrip() throws {
        let bytes = Self.sampleBuilder().build()
        let block = try BaseBlock(parsing: Array(bytes.prefix(4096)))
        var w = ByteWriter()
        block.write(to: &w)
        #expect(w.bytes == Array(bytes.prefix(4096)))
        var k = ByteWriter()
        let hive = try Hive(bytes: bytes)
        let root = try hive.rootKey()
        root.write(to: &k)
        #expect(try KeyNode(parsing: k.bytes, cellOffset: root.cellOffset) == root)
    }

    /// Every record type writes back the bytes it was parsed from (the in-place writer needs this).
    @Test func recordsRoundTrip() throws {
        let bytes = Self.sampleBuilder().build()
        let hive = try Hive(bytes: bytes)
        var keys = [try hive.rootKey()]
        var checked = 0
        while let key = keys.popLast() {
            var w = ByteWriter()
            key.write(to: &w)
            #expect(try KeyNode(parsing: w.bytes, cellOffset: key.cellOffset) == key)
            #expect(Array(try hive.cell(at: key.cellOffset, "nk").prefix(w.bytes.count)) == w.bytes)
            for value in try hive.values(of: key) {
                var v = ByteWriter()
                value.write(to: &v)
                #expect(Array(try hive.cell(at: value.cellOffset, "vk").prefix(v.bytes.count)) == v.bytes)
                checked += 1
            }
            for leaf in try hive.subkeyLeaves(of: key) {
                var l = ByteWriter()
                leaf.write(to: &l)
                #expect(try SubkeyList(parsing: l.bytes, cellOffset: CellIndex(0)) == leaf)
            }
            keys += try hive.subkeys(of: key)
        }
        #expect(checked >= 10)
        let bin = try HiveBinHeader(parsing: Array(bytes[4096..<4128]), fileOffset: 4096)
        var h = ByteWriter()
        bin.write(to: &h)
        #expect(h.bytes == Array(bytes[4096..<4128]))
        var db = ByteWriter()
        BigData(segmentCount: 3, segmentList: CellIndex(0x120)).write(to: &db)
        #expect(try BigData(parsing: db.bytes, cellOffset: CellIndex(0)) == BigData(segmentCount: 3, segmentList: CellIndex(0x120)))
    }

    @Test func hostileOffsetsAreErrors() throws {
        var bytes = Self.sampleBuilder().build()
        // Root cell offset far outside the bins.
        bytes.replaceSubrange(36..<40, with: [0xF0, 0xFF, 0xFF, 0x0F])
        let hive = try Hive(bytes: bytes)
        #expect(throws: FormatError.self) { try hive.rootKey() }
        #expect(throws: FormatError.self) { try Hive(bytes: Array(bytes.prefix(4000))) }
        var notRegf = bytes
        notRegf[0] = 0x52
        #expect(throws: FormatError.self) { try Hive(bytes: notRegf) }
    }
}
