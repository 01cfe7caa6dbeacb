@testable import FerryTarget
import Testing

/// The .vmx grammar: quoting, `|XX` escapes, duplicates, comments, hostile input.
@Suite struct VMXTests {
    @Test func quotedUnquotedAndCommentLines() throws {
        let doc = try VMX.parse(Array("""
            # made by hand
            displayName = "a b"
              memsize=512   # trailing comment
            guestOS = "otherlinux-64" # after the quote
            bare line without equals
            """.utf8))
        #expect(doc["DISPLAYNAME"] == "a b")
        #expect(doc["memsize"] == "512")
        #expect(doc["guestos"] == "otherlinux-64")
        #expect(doc.entries.count == 3)
        #expect(doc.warnings == ["line 5: no '=': ignored"])
    }

    @Test func barEscapesDecodeBytes() throws {
        let doc = try VMX.parse(Array(#"displayName = "say |22hi|22 |7C |0Aend |zz""#.utf8))
        #expect(doc["displayName"] == "say \"hi\" | \nend |zz")
        #expect(doc.warnings.count == 1 && doc.warnings[0].contains("'|' not followed by two hex digits"))
    }

    @Test func laterDuplicateWinsWithAWarning() throws {
        let doc = try VMX.parse(Array("memsize = \"512\"\nMemSize = \"1024\"\n".utf8))
        #expect(doc["memsize"] == "1024")
        #expect(doc.entries.count == 1)
        #expect(doc.warnings == ["line 2: duplicate key MemSize (first on line 1); the later value is used"])
    }

    @Test func windows1252EncodingReadsLatin1Bytes() throws {
        let machine = try Fixture.machine("workstation17-debian-efi")
        #expect(machine.name == "Dev \"box\" | café")
        #expect(machine.warnings.isEmpty, "\(machine.warnings)")
    }

    @Test func invalidUTF8IsReplacedAndSaid() throws {
        let doc = try VMX.parse([UInt8]("displayName = \"".utf8) + [0xFF, 0xFE] + [UInt8]("\"".utf8))
        #expect(doc["displayName"] == "\u{FFFD}\u{FFFD}")
        #expect(doc.warnings.first?.contains("not UTF-8") == true)
    }

    @Test func unclosedQuoteRunsToEndOfLine() throws {
        let doc = try VMX.parse(Array("displayName = \"open\nmemsize = \"64\"".utf8))
        #expect(doc["displayName"] == "open")
        #expect(doc["memsize"] == "64")
        #expect(doc.warnings == ["line 1: displayName: no closing quote; the value runs to the end of the line"])
    }

    @Test func binaryInputIsRefused() {
        #expect(throws: VMXError(.binary, "byte 3 is NUL: this is a binary file, not a .vmx text file")) {
            try VMX.parse([0x4B, 0x44, 0x4D, 0x00, 0x01])
        }
    }

    @Test func hugeInputIsRefusedBeforeParsing() {
        #expect { try VMX.parse([UInt8](repeating: 0x61, count: VMX.Limits.maxBytes + 1)) } throws: { ($0 as? VMXError)?.code == .tooLarge }
    }

    @Test func tooManyKeysAreRefused() {
        let text = (0...VMX.Limits.maxEntries).map { "k\($0) = \"v\"" }.joined(separator: "\n")
        #expect { try VMX.parse(Array(text.utf8)) } throws: { ($0 as? VMXError)?.code == .tooManyEntries }
    }

    /// A megabyte of bars: linear work, every bar kept, one warning for the line.
    @Test func endlessEscapesStayBounded() throws {
        let text = "x = \"" + String(repeating: "|", count: VMX.Limits.maxBytes - 16) + "\""
        let doc = try VMX.parse(Array(text.utf8))
        #expect(doc["x"]?.count == VMX.Limits.maxBytes - 16)
        #expect(doc.warnings.count == 1)
    }

    @Test func hostileKeysAreIgnoredWithWarnings() throws {
        let doc = try VMX.parse(Array(("= \"v\"\n" + String(repeating: "k", count: 300) + " = \"v\"\nke\"y = \"1\"").utf8))
        #expect(doc.entries.isEmpty)
        #expect(doc.warnings.count == 3)
    }
}
