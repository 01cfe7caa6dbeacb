import FerryBinary
import FerryRegistry
import FerryTestSupport
import Testing

/// The `.reg` parser, against the syntax hivexregedit accepts (its results are compared with
/// hivex's in `HiveWriterOracleTests`).
@Suite struct RegFileTests {
    @Test func parsesSectionsValuesAndContinuations() throws {
        let text = """
            Windows Registry Editor Version 5.00\r
            ; a comment

            [HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\atapi]\r
            "Start"=dword:0000000a
            "Say \\"hi\\""="C:\\\\x"
            "Bin"=hex:01,02,\\
              03,ff
            "Exp"=hex(2):41,00,00,00
            @="dflt"
            "Gone"=-
            @=-

            [-HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Old]
            """
        let reg = try RegFile(parsing: text, prefix: "HKEY_LOCAL_MACHINE\\SYSTEM")
        #expect(reg.sections.count == 2)
        let atapi = reg.sections[0]
        #expect(atapi.path == ["ControlSet001", "Services", "atapi"])
        #expect(!atapi.deletesKey)
        #expect(atapi.changes == [
            .set(name: "Start", type: 4, data: [10, 0, 0, 0]),
            .set(name: "Say \"hi\"", type: 1, data: [0x43, 0, 0x3A, 0, 0x5C, 0, 0x78, 0, 0, 0]),
            .set(name: "Bin", type: 3, data: [1, 2, 3, 0xFF]),
            .set(name: "Exp", type: 2, data: [0x41, 0, 0, 0]),
            .set(name: "", type: 1, data: [0x64, 0, 0x66, 0, 0x6C, 0, 0x74, 0, 0, 0]),
            .delete(name: "Gone"),
            .delete(name: ""),
        ])
        #expect(reg.sections[1] == RegFile.Section(path: ["ControlSet001", "Old"], deletesKey: true, changes: []))
    }

    @Test func badLinesNameTheLine() throws {
        let cases: [(String, String)] = [
            ("[\\A]\n\"x\"=dword:123\n", "line 2"),
            ("\"x\"=dword:00000001\n", "line 1"),
            ("[\\A]\n\n\n\"x\"=hex:0g\n", "line 4"),
            ("[\\A]\n\"unterminated=1\n", "line 2"),
        ]
        for (text, line) in cases {
            #expect(throws: FormatError.self, "\(text)") { try RegFile(parsing: text) }
            do {
                _ = try RegFile(parsing: text)
            } catch let error as FormatError {
                #expect(error.field == line, "\(text): \(error)")
            }
        }
        #expect(throws: FormatError.self) { try RegFile(parsing: "[HKEY_CURRENT_USER\\X]\n", prefix: "HKEY_LOCAL_MACHINE\\SYSTEM") }
    }

    @Test func applyCreatesParentsAndDeletes() throws {
        let reg = try RegFile(parsing: """
            [\\A\\B\\C]
            "V"=dword:00000001

            [-\\ControlSet001\\Many]

            """)
        var editor = try HiveEditor(bytes: RegistryTests.sampleBuilder().build(), timestamp: 1)
        try reg.apply(to: &editor)
        let hive = try Hive(bytes: editor.bytes())
        #expect(try hive.value(at: "A\\B\\C", "V") == .dword(1))
        #expect(try hive.key("ControlSet001\\Many") == nil)
        #expect(try hive.key("ControlSet001\\Services\\atapi") != nil)
    }
}
