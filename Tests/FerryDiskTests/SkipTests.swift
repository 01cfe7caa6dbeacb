import FerryTestSupport
import Testing

/// A skip is a pass only where skips are allowed: under FERRY_REQUIRE_TOOLS=1 (CI) the same
/// missing tool must fail the test that needed it.
@Suite struct SkipTests {
    static let missing = "ferry-test-no-such-tool"

    @Test func aMissingToolSkipsOrFailsByTheEnvironment() {
        #expect(Tools.find(Self.missing) == nil)
        if Skip.isRequired {
            withKnownIssue("FERRY_REQUIRE_TOOLS=1 turns the skip into a failure") {
                #expect(!Tools.require(Self.missing))
            }
        } else {
            #expect(!Tools.require(Self.missing))
        }
    }

    @Test func anInstalledToolIsNoSkip() {
        #expect(Tools.require("sh"))
    }
}
