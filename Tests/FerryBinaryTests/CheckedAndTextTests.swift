import FerryBinary
import Testing

@Suite struct CheckedTests {
    @Test func addThrowsExactlyOnOverflow() throws {
        #expect(try Checked.add(UInt64.max - 1, 1, "end", structure: "s") == UInt64.max)
        #expect(try Checked.add(0, 0, "end", structure: "s") == 0)
        #expect(throws: FormatError(.outOfRange, structure: "qcow2 header", field: "l1 offset",
                                    "\(UInt64.max) + 1 overflows 64 bits")) {
            try Checked.add(UInt64.max, 1, "l1 offset", structure: "qcow2 header")
        }
        #expect(throws: FormatError.self) { try Checked.add(1 << 63, 1 << 63, "x", structure: "s") }
    }

    @Test func multiplyThrowsExactlyOnOverflow() throws {
        #expect(try Checked.multiply(1 << 32, (1 << 32) - 1, "bytes", structure: "s") == 0xFFFF_FFFF_0000_0000)
        #expect(try Checked.multiply(UInt64.max, 1, "bytes", structure: "s") == UInt64.max)
        #expect(try Checked.multiply(UInt64.max, 0, "bytes", structure: "s") == 0)
        #expect(throws: FormatError(.outOfRange, structure: "VHD dynamic header", field: "table size",
                                    "4294967296 × 4294967296 overflows 64 bits")) {
            try Checked.multiply(1 << 32, 1 << 32, "table size", structure: "VHD dynamic header")
        }
        #expect(throws: FormatError.self) { try Checked.multiply(UInt64.max, 2, "x", structure: "s") }
    }
}

@Suite struct UTF16LETests {
    @Test func unitsAreLittleEndianPairs() {
        // "A€" then U+1F600 as a surrogate pair.
        let bytes: [UInt8] = [0x41, 0x00, 0xAC, 0x20, 0x3D, 0xD8, 0x00, 0xDE]
        #expect(bytes.utf16LittleEndianUnits == [0x0041, 0x20AC, 0xD83D, 0xDE00])
        #expect(String(decoding: bytes.utf16LittleEndianUnits, as: UTF16.self) == "A€\u{1F600}")
    }

    @Test func aTrailingOddByteIsIgnored() {
        #expect([UInt8]([0x41, 0x00, 0x42]).utf16LittleEndianUnits == [0x0041])
        #expect([UInt8]([0x41]).utf16LittleEndianUnits.isEmpty)
        #expect([UInt8]().utf16LittleEndianUnits.isEmpty)
    }

    @Test func hexStringIsLowercaseTwoDigitsPerByte() {
        #expect([UInt8]([0x00, 0x0F, 0xA0, 0xFF]).hexString == "000fa0ff")
        #expect([UInt8]().hexString == "")
    }
}

@Suite struct FormatErrorTests {
    @Test func descriptionNamesFileStructureFieldAndOffset() {
        let full = FormatError(.badMagic, structure: "VHD footer", field: "cookie", offset: 1536, file: "disk.vhd", "expected conectix")
        #expect(full.description == "disk.vhd: VHD footer field cookie at byte offset 1536: expected conectix")
        let bare = FormatError(.truncated, structure: "regf base block", "the file is 12 bytes")
        #expect(bare.description == "regf base block: the file is 12 bytes")
        let atZero = FormatError(.outOfRange, structure: "GPT header", offset: 0, "x")
        #expect(atZero.description == "GPT header at byte offset 0: x")
    }

    @Test func inFileFillsOnlyAMissingName() {
        let error = FormatError(.cycle, structure: "image chain", "loops")
        #expect(error.inFile("a.qcow2").file == "a.qcow2")
        #expect(error.inFile("a.qcow2").inFile("b.qcow2").file == "a.qcow2")
        #expect(error.inFile("a.qcow2").description == "a.qcow2: image chain: loops")
        #expect(error.inFile("a.qcow2").code == .cycle)
    }
}
