import FerryBinary
import FerryRegistry
import FerryTestSupport
import Testing

/// The hive editor against ferry's own reader: structure, storage kinds, allocator, base block.
/// The same edits are checked against hivex in `HiveWriterOracleTests`.
@Suite struct HiveWriterTests {
    static let stamp: UInt64 = 0x01DA_0000_1234_5678

    static func utf16z(_ s: String) -> [UInt8] { (Array(s.utf16) + [0]).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    static func editor(_ bytes: [UInt8]) throws -> HiveEditor { try HiveEditor(bytes: bytes, timestamp: stamp) }

    @Test func unchangedInputIsByteIdentical() throws {
        let bytes = RegistryTests.sampleBuilder().build()
        var editor = try Self.editor(bytes)
        #expect(editor.bytes() == bytes)
        // Creating a key that exists (any case) changes nothing.
        #expect(try editor.createKey(["controlset001", "SERVICES", "Atapi"]) == false)
        #expect(try editor.deleteValue(at: ["Select"], name: "Nope") == false)
        #expect(try editor.deleteKey(["Nope"]) == false)
        #expect(editor.bytes() == bytes)
        #expect(!editor.hasChanges)
    }

    @Test func editsReadBackAndBaseBlockIsUpdated() throws {
        let bytes = RegistryTests.sampleBuilder().build()
        var editor = try Self.editor(bytes)
        #expect(try editor.createKey(["ControlSet001", "Services", "viostor", "Parameters"]))
        try editor.setValue(at: ["ControlSet001", "Services", "viostor"], name: "Start", type: 4, data: [0, 0, 0, 0])
        try editor.setValue(at: ["ControlSet001", "Services", "viostor"], name: "ImagePath", type: 2, data: Self.utf16z("system32\\drivers\\viostor.sys"))
        try editor.setValue(at: ["ControlSet001", "Services", "atapi"], name: "Start", type: 4, data: [3, 0, 0, 0])
        try editor.setValue(at: ["ControlSet001", "Services", "viostor"], name: "", type: 1, data: Self.utf16z("default"))
        #expect(try editor.deleteValue(at: ["ControlSet001", "Services", "atapi"], name: "group"))
        let out = editor.bytes()
        let hive = try Hive(bytes: out)
        #expect(!hive.isDirty)
        #expect(try hive.value(at: "ControlSet001\\Services\\viostor", "Start") == .dword(0))
        #expect(try hive.value(at: "ControlSet001\\Services\\viostor", "ImagePath") == .expandString("system32\\drivers\\viostor.sys"))
        #expect(try hive.value(at: "ControlSet001\\Services\\viostor", "") == .string("default"))
        #expect(try hive.value(at: "ControlSet001\\Services\\atapi", "Start") == .dword(3))
        #expect(try hive.value(at: "ControlSet001\\Services\\atapi", "Group") == nil)
        #expect(try hive.value(at: "ControlSet001\\Services\\atapi", "ImagePath")?.string == "System32\\DRIVERS\\atapi.sys")
        #expect(try hive.key("ControlSet001\\Services\\viostor\\Parameters") != nil)
        // Everything that was there still is.
        #expect(try hive.value(at: "ControlSet001\\Control", "Big") == .binary((0..<40000).map { UInt8(truncatingIfNeeded: $0 * 7) }))
        #expect(try hive.value(at: "ControlSet001\\Control", "Ünïcode✓") == .string("ḧello"))

        let old = try BaseBlock(parsing: bytes), new = hive.baseBlock
        #expect(new.primarySequence == old.primarySequence + 1)
        #expect(new.secondarySequence == new.primarySequence)
        #expect(new.lastWritten == Self.stamp)
        #expect(Int(new.hiveBinsDataSize) + 4096 <= out.count)
        #expect(hive.checksumValid)
        // The parent's bookkeeping: count, max name length, timestamp.
        let services = try #require(try hive.key("ControlSet001\\Services"))
        #expect(services.subkeyCount == 2)
        #expect(services.maxSubkeyNameLength & 0xFFFF == 14)
        #expect(services.lastWritten == Self.stamp)
        // The result is itself an editable hive (the editor's whole-hive check passes).
        #expect(try Self.editor(out).bytes() == out)
    }

    /// Without a timestamp the editor stamps now: a FILETIME after 2020-01-01 (132,223,104 × 10⁹).
    @Test func defaultTimestampIsNow() throws {
        var editor = try HiveEditor(bytes: RegistryTests.sampleBuilder().build())
        try editor.createKey(["New"])
        let hive = try Hive(bytes: editor.bytes())
        #expect(hive.baseBlock.lastWritten > 132_223_104_000_000_000)
        #expect(try #require(try hive.key("New")).lastWritten == hive.baseBlock.lastWritten)
    }

    @Test func dirtyOrDamagedHivesAreRefused() throws {
        var builder = RegistryTests.sampleBuilder()
        builder.dirty = true
        #expect { try Self.editor(builder.build()) } throws: { ($0 as? HiveEditError)?.code == .dirty }
        var bytes = RegistryTests.sampleBuilder().build()
        bytes[200] ^= 1
        #expect { try Self.editor(bytes) } throws: { ($0 as? HiveEditError)?.code == .dirty }
        // A cell size that breaks the tiling of the first bin.
        var broken = RegistryTests.sampleBuilder().build()
        broken.replaceSubrange(4096 + 32..<4096 + 36, with: [0xF3, 0xFF, 0xFF, 0xFF])
        #expect(throws: FormatError.self) { try Self.editor(broken) }
    }

    /// Found by the mutation test: records hivex cannot follow, that the reader alone accepted.
    @Test func recordsHivexRefusesAreRefused() throws {
        let bytes = RegistryTests.sampleBuilder().build()
        let hive = try Hive(bytes: bytes)
        // A key whose parent field is not the key it is listed under (hivex: node_parent: Bad address).
        let atapi = try #require(try hive.key("ControlSet001\\Services\\atapi"))
        var wrongParent = bytes
        let parentField = Int(atapi.cellOffset.dataFileOffset) + 16
        wrongParent.replaceSubrange(parentField..<parentField + 4, with: withUnsafeBytes(of: UInt32(0x1000).littleEndian, Array.init))
        #expect { try Self.editor(wrongParent) } throws: { ($0 as? FormatError)?.field == "parent" }
        // A UTF-16 value name with a lone surrogate (hivex: value_key: Invalid argument).
        let control = try #require(try hive.key("ControlSet001\\Control"))
        let vk = try #require(try hive.values(of: control).first { $0.nameBytes.count % 2 == 0 && $0.flags & 1 == 0 })
        var lone = bytes
        let name = Int(vk.cellOffset.dataFileOffset) + 20
        lone.replaceSubrange(name..<name + 2, with: [0x00, 0xD8])
        #expect { try Self.editor(lone) } throws: { ($0 as? FormatError)?.field == "name" }
    }

    /// Lookups skip keys whose lh hash differs only when every hash in the hive is exact; a
    /// hive with one wrong hash still finds the key (and so does not create a duplicate).
    @Test func wrongLhHashesStillFindTheKey() throws {
        var bytes = RegistryTests.sampleBuilder().build()
        let hive = try Hive(bytes: bytes)
        let services = try #require(try hive.key("ControlSet001\\Services"))
        let leaf = services.subkeyList
        #expect(try SubkeyList(parsing: hive.cell(at: leaf, "list"), cellOffset: leaf).kind == .lh)
        let hashField = Int(leaf.dataFileOffset) + 4 + 4
        bytes[hashField] ^= 0x5A
        var editor = try Self.editor(bytes)
        #expect(try editor.createKey(["ControlSet001", "Services", "ATAPI"]) == false)
        try editor.setValue(at: ["ControlSet001", "Services", "atapi"], name: "Start", type: 4, data: [1, 0, 0, 0])
        let edited = try Hive(bytes: editor.bytes())
        #expect(try edited.subkeys(of: #require(try edited.key("ControlSet001\\Services"))).count == 1)
        #expect(try edited.value(at: "ControlSet001\\Services\\atapi", "Start") == .dword(1))
    }

    @Test func valueStorageKinds() throws {
        for minor: UInt32 in [3, 5] {
            var editor = try Self.editor(RegistryTests.sampleBuilder(minor: minor).build())
            let big = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let medium = (0..<16_344).map { UInt8(truncatingIfNeeded: $0) }
            try editor.createKey(["K"])
            try editor.setValue(at: ["K"], name: "four", type: 3, data: [1, 2, 3, 4])
            try editor.setValue(at: ["K"], name: "empty", type: 3, data: [])
            try editor.setValue(at: ["K"], name: "five", type: 3, data: [1, 2, 3, 4, 5])
            try editor.setValue(at: ["K"], name: "medium", type: 3, data: medium)
            try editor.setValue(at: ["K"], name: "big", type: 3, data: big)
            try editor.setValue(at: ["K"], name: "Καλημέρα", type: 3, data: [9])
            try editor.createKey(["K", "Sub"])
            let hive = try Hive(bytes: editor.bytes())
            let key = try #require(try hive.key("K"))
            let values = Dictionary(uniqueKeysWithValues: try hive.values(of: key).map { ($0.name, $0) })
            #expect(values["four"]?.isInline == true)
            #expect(values["empty"]?.isInline == true)
            #expect(values["five"]?.isInline == false)
            #expect(values["Καλημέρα"]?.flags == 0)  // UTF-16 name
            let bigCell = try hive.cell(at: try #require(values["big"]).dataCell, "data")
            #expect(bigCell.starts(with: Array("db".utf8)) == (minor >= 4))
            let mediumCell = try hive.cell(at: try #require(values["medium"]).dataCell, "data")
            #expect(!mediumCell.starts(with: Array("db".utf8)) || medium.starts(with: Array("db".utf8)))
            #expect(try hive.value(at: "K", "big") == .binary(big))
            #expect(try hive.value(at: "K", "medium") == .binary(medium))
            #expect(try hive.value(at: "K", "five") == .binary([1, 2, 3, 4, 5]))
            #expect(try hive.value(at: "K", "empty") == .binary([]))
            #expect(try hive.value(at: "K", "Καλημέρα") == .binary([9]))
            // A key that had no subkeys gets an lh list (minor ≥ 5) or an lf list.
            let list = try SubkeyList(parsing: hive.cell(at: key.subkeyList, "list"), cellOffset: key.subkeyList)
            #expect(list.kind == (minor >= 5 ? .lh : .lf))
        }
    }

    @Test func newKeysShareTheParentSecurityCell() throws {
        var editor = try Self.editor(RegistryTests.sampleBuilder().build())
        let before = try Hive(bytes: editor.bytes())
        let root = try before.rootKey()
        let refs = try SecurityKey(parsing: before.cell(at: root.security, "sk"), cellOffset: root.security).referenceCount
        try editor.createKey(["A", "B", "C"])
        var hive = try Hive(bytes: editor.bytes())
        let c = try #require(try hive.key("A\\B\\C"))
        #expect(c.security == root.security)
        #expect(try SecurityKey(parsing: hive.cell(at: root.security, "sk"), cellOffset: root.security).referenceCount == refs + 3)
        #expect(try editor.deleteKey(["A"]))
        hive = try Hive(bytes: editor.bytes())
        #expect(try SecurityKey(parsing: hive.cell(at: root.security, "sk"), cellOffset: root.security).referenceCount == refs)
        #expect(try hive.key("A") == nil)
    }

    @Test func freedCellsAreReused() throws {
        var editor = try Self.editor(RegistryTests.sampleBuilder().build())
        let size = editor.hiveBinsSize
        // Replacing a value over and over frees and reuses the same cells: no growth.
        for round in 0..<200 {
            try editor.setValue(at: ["Select"], name: "Blob", type: 3, data: [UInt8](repeating: UInt8(round & 0xFF), count: 600))
        }
        try editor.deleteValue(at: ["Select"], name: "Blob")
        for i in 0..<20 { try editor.createKey(["Tmp\(i)"]) }
        try editor.deleteKey(["Tmp3"])
        #expect(editor.hiveBinsSize == size)
        let hive = try Hive(bytes: editor.bytes())
        #expect(try hive.key("Tmp19") != nil && hive.key("Tmp3") == nil)
    }

    @Test func fullBinsAppendNewHbins() throws {
        var editor = try Self.editor(RegistryTests.sampleBuilder().build())
        let size = editor.hiveBinsSize
        for i in 0..<2000 { try editor.createKey(["Grow", "K\(i)"]) }
        try editor.setValue(at: ["Grow", "K7"], name: "Huge", type: 3, data: [UInt8](repeating: 7, count: 100_000))
        #expect(editor.hiveBinsSize > size)
        let out = editor.bytes()
        let hive = try Hive(bytes: out)
        #expect(Int(hive.baseBlock.hiveBinsDataSize) + 4096 == out.count)
        #expect(try hive.subkeys(of: #require(try hive.key("Grow"))).count == 2000)
        #expect(try hive.value(at: "Grow\\K7", "Huge") == .binary([UInt8](repeating: 7, count: 100_000)))
    }

    /// Seeded: keys inserted in random order into leaves of 4 stay sorted across the ri.
    @Test func fullLeavesSplitIntoAnRiIndex() throws {
        let seed: UInt64 = 0x5EED_0011
        print("fullLeavesSplitIntoAnRiIndex seed \(seed)")
        var random = SeededRandom(seed: seed)
        var editor = try Self.editor(RegistryTests.sampleBuilder().build())
        editor.maxLeafEntries = 4
        var names = (0..<60).map { "Key\($0)" } + ["alpha", "ZETA", "mid_Ä"]
        names.shuffle(using: &random)
        for name in names { try editor.createKey(["Split", name]) }
        let hive = try Hive(bytes: editor.bytes())
        let split = try #require(try hive.key("Split"))
        let leaves = try hive.subkeyLeaves(of: split)
        #expect(leaves.count > 1)
        #expect(leaves.allSatisfy { $0.offsets.count <= 4 && $0.kind == .lh })
        let stored = try hive.subkeys(of: split).map(\.name)
        #expect(stored == names.sorted { $0.uppercased().utf16.lexicographicallyPrecedes($1.uppercased().utf16) })
        for leaf in leaves {
            for (i, offset) in leaf.offsets.enumerated() {
                #expect(leaf.hints[i] == SubkeyList.lhHash(try hive.key(atCell: offset).name))
            }
        }
    }

    @Test func refusedEditsChangeNothing() throws {
        let bytes = RegistryTests.sampleBuilder().build()
        var editor = try Self.editor(bytes)
        #expect { try editor.setValue(at: ["Missing"], name: "x", type: 4, data: [0, 0, 0, 0]) } throws: {
            ($0 as? HiveEditError)?.code == .noSuchKey
        }
        #expect { try editor.createKey(["Ok", "bad\\name"]) } throws: { _ in true }
        #expect { try editor.createKey(["Ok", String(repeating: "x", count: 256)]) } throws: { ($0 as? HiveEditError)?.code == .badName }
        #expect { try editor.deleteKey([]) } throws: { ($0 as? HiveEditError)?.code == .unsupported }
        // createKey(["Ok", <bad>]) failed after creating "Ok": the whole call is undone.
        #expect(try editor.keyExists(["Ok"]) == false)
        #expect(editor.bytes() == bytes)
    }
}

/// The figure for the closing note (printed, never asserted: speed belongs in benchmarks):
/// a service key with four values added to a hive of 10,000 keys, and the whole-hive check.
@Suite struct HiveWriterTimingTests {
    @Test func editTimeForTenThousandKeys() throws {
        var builder = HiveBuilder(minorVersion: 5)
        for i in 0..<10_000 { builder.set("ControlSet001\\Services\\S\(i % 100)\\K\(i)", "Start", .dword(UInt32(i))) }
        let bytes = builder.build()
        let clock = ContinuousClock()
        var editor: HiveEditor?
        let open = try clock.measure { editor = try HiveEditor(bytes: bytes, timestamp: 1) }
        var edited = try #require(editor)
        let service = ["ControlSet001", "Services", "viostor"]
        let edit = try clock.measure {
            try edited.createKey(service)
            try edited.setValue(at: service, name: "Start", type: 4, data: [0, 0, 0, 0])
            try edited.setValue(at: service, name: "Type", type: 4, data: [1, 0, 0, 0])
            try edited.setValue(at: service, name: "ErrorControl", type: 4, data: [1, 0, 0, 0])
            try edited.setValue(at: service, name: "ImagePath", type: 2, data: Array("system32\\drivers\\viostor.sys".utf8))
        }
        let out = edited.bytes()
        let hive = try Hive(bytes: out)
        #expect(try hive.value(at: "ControlSet001\\Services\\viostor", "Start") == .dword(0))
        print("hive editor, \(bytes.count)-byte hive with 10,100 keys: open+check \(open), 5 edits \(edit)")
    }
}
