import FerryProtocol
import FerryTransfer
import Testing

@Suite struct PairingCodeTests {
    @Test func zeroAndOnesEncodeToTheEndsOfTheAlphabet() throws {
        #expect(try PairingCode(bytes: Array(repeating: 0, count: 10)).description == "0000-0000-0000-0000")
        #expect(try PairingCode(bytes: Array(repeating: 0xFF, count: 10)).description == "zzzz-zzzz-zzzz-zzzz")
    }

    @Test func knownVector() throws {
        // 0x08 0x86 0x42 ... : 00001 00010 00011 00100 ... = symbols 1,2,3,4,...
        let code = try PairingCode(parsing: "1234-5678-9abc-defg")
        #expect(code.description == "1234-5678-9abc-defg")
        #expect(code.bytes[0] == 0x08)
        #expect(code.bytes[1] == 0x86)
    }

    @Test func randomCodesRoundTrip() throws {
        for _ in 0..<200 {
            let code = PairingCode.random()
            #expect(try PairingCode(parsing: code.description) == code)
            #expect(code.description.count == 19)
        }
    }

    @Test func typingIsForgiven() throws {
        let code = try PairingCode(parsing: "7kqm-2xrt-9pfa-w3ne")
        #expect(try PairingCode(parsing: "7KQM2XRT9PFAW3NE") == code)
        #expect(try PairingCode(parsing: "7kqm 2xrt 9pfa w3ne") == code)
        // Crockford aliases: o reads as 0, i and l as 1.
        #expect(try PairingCode(parsing: "oill-0000-0000-0000") == PairingCode(parsing: "0111-0000-0000-0000"))
    }

    @Test(arguments: ["", "7kqm-2xrt-9pfa-w3n", "7kqm-2xrt-9pfa-w3nee", "7kqm-2xrt-9pfa-w3nu", "7kqm-2xrt-9pfa-w3n!", "7kqm-2xrt-9pfa-w3né"])
    func malformedCodesAreRefused(_ text: String) {
        #expect(throws: ProtocolError.self) { try PairingCode(parsing: text) }
    }
}

@Suite struct HostPortTests {
    @Test func parsesTheUsualForms() throws {
        #expect(try HostPort(parsing: "192.0.2.10", defaultHost: "x") == HostPort(host: "192.0.2.10", port: 9000))
        #expect(try HostPort(parsing: "192.0.2.10:7000", defaultHost: "x") == HostPort(host: "192.0.2.10", port: 7000))
        #expect(try HostPort(parsing: ":7000", defaultHost: "0.0.0.0") == HostPort(host: "0.0.0.0", port: 7000))
        #expect(try HostPort(parsing: "[fd00::1]:7000", defaultHost: "x") == HostPort(host: "fd00::1", port: 7000))
        #expect(try HostPort(parsing: "fd00::1", defaultHost: "x") == HostPort(host: "fd00::1", port: 9000))
    }

    @Test(arguments: ["host:port", "host:70000", "[::1]:x"])
    func badPortsAreRefused(_ text: String) {
        #expect(throws: TransferError.self) { try HostPort(parsing: text, defaultHost: "x") }
    }
}
