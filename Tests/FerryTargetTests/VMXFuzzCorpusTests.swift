@testable import FerryTarget
import FerryTestSupport
import Testing

/// The FuzzVMX corpus is the fixtures themselves; every committed seed and crash input ends in
/// a plan or the parser's own error.
@Suite struct VMXFuzzCorpusTests {
    @Test func committedInputsOnlyThrowParserErrors() throws {
        let inputs = try FuzzCorpus.committed("FuzzVMX")
        #expect(inputs.count >= Fixture.all.count)
        for input in inputs {
            do { try VMXFuzz.run(input.bytes) } catch { #expect(VMXFuzz.isExpected(error), "\(input.name): \(error)") }
        }
    }

    /// Seeded random damage to every fixture: never a trap, at most a VMXError.
    @Test func damagedFixturesNeverTrap() throws {
        let seed: UInt64 = 0x5EED_0012
        print("damagedFixturesNeverTrap seed \(seed)")
        var random = SeededRandom(seed: seed)
        for name in Fixture.all {
            let original = try Fixture.bytes(name)
            for _ in 0..<200 {
                var bytes = original
                for _ in 0..<Int(random.next() % 8 + 1) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] = [UInt8(ascii: "|"), UInt8(ascii: "\""), UInt8(ascii: "="), UInt8(ascii: ":"), 0x0A, 0xFF, UInt8(truncatingIfNeeded: random.next())][Int(random.next() % 7)]
                }
                do { try VMXFuzz.run(bytes) } catch { #expect(VMXFuzz.isExpected(error)) }
            }
        }
    }
}
