import FerryBinary
import FerryTestSupport
import Testing

@Suite struct ByteReaderTests {
    static let sample: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xFF, 0x80]

    @Test func integersNameTheirEndianness() throws {
        var le = ByteReader(Self.sample, structure: "sample")
        #expect(try le.readLittleEndian(UInt16.self) == 0x0201)
        #expect(try le.readLittleEndian(UInt32.self) == 0x0605_0403)
        #expect(le.position == 6)
        var be = ByteReader(Self.sample, structure: "sample")
        #expect(try be.readBigEndian(UInt16.self) == 0x0102)
        #expect(try be.readBigEndian(UInt32.self) == 0x0304_0506)
        var wide = ByteReader(Self.sample, structure: "sample")
        #expect(try wide.readLittleEndian(UInt64.self) == 0x0807_0605_0403_0201)
        #expect(try wide.readBigEndian(UInt16.self) == 0xFF80)
        #expect(wide.remaining == 0)
    }

    @Test func signedIntegersKeepTheirSign() throws {
        var r = ByteReader([0xFE, 0xFF, 0x80, 0x00, 0xFF], structure: "signed")
        #expect(try r.readLittleEndian(Int16.self) == -2)
        #expect(try r.readBigEndian(Int16.self) == Int16.min)
        #expect(try r.readLittleEndian(Int8.self) == -1)
    }

    @Test func readingPastTheEndThrowsAndDoesNotMove() throws {
        var r = ByteReader([1, 2, 3], structure: "tiny header", baseOffset: 4096)
        _ = try r.readUInt8()
        #expect(throws: FormatError(.truncated, structure: "tiny header", field: "length", offset: 4097, "needs 4 bytes but only 2 remain")) {
            try r.readLittleEndian(UInt32.self, "length")
        }
        #expect(r.position == 1)
        #expect(throws: FormatError.self) { try r.readBytes(3) }
        #expect(throws: FormatError.self) { try r.readBytes(-1) }
        #expect(throws: FormatError.self) { try r.skip(-1) }
        #expect(try r.readBytes(2) == [2, 3])
        #expect(throws: FormatError.self) { try r.readUInt8() }
        #expect(throws: FormatError.self) { try r.readBigEndian(UInt64.self) }
    }

    @Test func emptyInputRefusesEveryRead() {
        var r = ByteReader([], structure: "empty")
        #expect(r.remaining == 0)
        #expect(throws: FormatError.self) { try r.readUInt8() }
        #expect(throws: FormatError.self) { try r.readLittleEndian(UInt16.self) }
        #expect(throws: FormatError.self) { try r.skip(1) }
    }

    @Test func seekStaysInsideTheStructure() throws {
        var r = ByteReader(Self.sample, structure: "sample", baseOffset: 512)
        try r.seek(to: Self.sample.count)
        #expect(r.remaining == 0)
        try r.seek(to: 8)
        #expect(try r.readBigEndian(UInt16.self) == 0xFF80)
        for bad in [-1, Self.sample.count + 1, Int.max] {
            #expect(throws: FormatError(.outOfRange, structure: "sample", field: "table", offset: 512,
                                        "position \(bad) is outside the 10-byte structure")) {
                try r.seek(to: bad, field: "table")
            }
        }
        #expect(r.position == Self.sample.count)
    }

    @Test func skipMovesByCount() throws {
        var r = ByteReader(Self.sample, structure: "sample")
        try r.skip(9)
        #expect(try r.readUInt8() == 0x80)
        #expect(throws: FormatError.self) { try r.skip(1) }
    }

    @Test func peekReadsAnywhereWithoutMoving() throws {
        var r = ByteReader(Self.sample, structure: "sample")
        _ = try r.readUInt8()
        #expect(try r.peekLittleEndian(UInt16.self, at: 8) == 0x80FF)
        #expect(try r.peekBigEndian(UInt32.self, at: 0) == 0x0102_0304)
        #expect(r.position == 1)
        #expect(throws: FormatError.self) { try r.peekLittleEndian(UInt32.self, at: 7) }
        #expect(throws: FormatError.self) { try r.peekBigEndian(UInt16.self, at: -2) }
    }

    @Test func arrayIntegerAccessorsReturnNilOutside() {
        let bytes: [UInt8] = [0x11, 0x22, 0x33, 0x44]
        #expect(bytes.littleEndian(UInt32.self, at: 0) == 0x4433_2211)
        #expect(bytes.bigEndian(UInt32.self, at: 0) == 0x1122_3344)
        #expect(bytes.littleEndian(UInt16.self, at: 2) == 0x4433)
        #expect(bytes.bigEndian(UInt16.self, at: 2) == 0x3344)
        #expect(bytes.littleEndian(UInt16.self, at: 3) == nil)
        #expect(bytes.bigEndian(UInt32.self, at: 1) == nil)
        #expect(bytes.littleEndian(UInt8.self, at: -1) == nil)
        #expect([UInt8]().bigEndian(UInt64.self, at: 0) == nil)
        #expect([UInt8](repeating: 0, count: 3).littleEndian(UInt64.self, at: Int.max) == nil)
    }
}

@Suite struct ByteWriterTests {
    @Test func writesBothEndiannesses() {
        var w = ByteWriter()
        w.writeLittleEndian(UInt32(0x0102_0304))
        w.writeBigEndian(UInt32(0x0102_0304))
        w.writeBigEndian(Int16(-2))
        w.writeZeros(2)
        #expect(w.bytes == [0x04, 0x03, 0x02, 0x01, 0x01, 0x02, 0x03, 0x04, 0xFF, 0xFE, 0, 0])
        w.setLittleEndian(UInt16(0xBEEF), at: 10)
        w.setBigEndian(UInt16(0xCAFE), at: 0)
        #expect(w.bytes == [0xCA, 0xFE, 0x02, 0x01, 0x01, 0x02, 0x03, 0x04, 0xFF, 0xFE, 0xEF, 0xBE])
    }

    /// Every value a writer puts down, a reader reads back, in either byte order.
    @Test func seededRoundTripThroughTheReader() throws {
        let seed: UInt64 = 20_261_201
        print("ByteWriter round trip: seed \(seed)")
        var rng = SeededRandom(seed: seed)
        var w = ByteWriter()
        var expected: [(value: UInt64, width: Int, big: Bool)] = []
        for _ in 0..<500 {
            let value = rng.next()
            let width = [1, 2, 4, 8][Int(rng.next() % 4)]
            let big = rng.next() & 1 == 1
            switch (width, big) {
            case (1, _): w.write(UInt8(truncatingIfNeeded: value))
            case (2, false): w.writeLittleEndian(UInt16(truncatingIfNeeded: value))
            case (2, true): w.writeBigEndian(UInt16(truncatingIfNeeded: value))
            case (4, false): w.writeLittleEndian(UInt32(truncatingIfNeeded: value))
            case (4, true): w.writeBigEndian(UInt32(truncatingIfNeeded: value))
            case (_, false): w.writeLittleEndian(value)
            case (_, true): w.writeBigEndian(value)
            }
            expected.append((value, width, big))
        }
        var r = ByteReader(w.bytes, structure: "round trip")
        for (i, item) in expected.enumerated() {
            let mask = item.width == 8 ? UInt64.max : (UInt64(1) << (8 * item.width)) - 1
            let read: UInt64
            switch (item.width, item.big) {
            case (1, _): read = UInt64(try r.readUInt8())
            case (2, false): read = UInt64(try r.readLittleEndian(UInt16.self))
            case (2, true): read = UInt64(try r.readBigEndian(UInt16.self))
            case (4, false): read = UInt64(try r.readLittleEndian(UInt32.self))
            case (4, true): read = UInt64(try r.readBigEndian(UInt32.self))
            case (_, false): read = try r.readLittleEndian(UInt64.self)
            case (_, true): read = try r.readBigEndian(UInt64.self)
            }
            #expect(read == item.value & mask, "value \(i) (seed \(seed))")
        }
        #expect(r.remaining == 0)
    }
}
