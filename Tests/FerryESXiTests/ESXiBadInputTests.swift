import FerryESXi
import FerryFormats
import FerryTestSupport
import Foundation
import Testing

/// Each bad answer of a host, and each bad name, is one clear error with its own code.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ESXiBadInputTests {
    func expectError(_ code: ESXiError.Code, _ containing: String = "", _ body: () throws -> Void) {
        #expect {
            try body()
        } throws: { error in
            guard let e = error as? ESXiError else { return false }
            return e.code == code && (containing.isEmpty || e.description.contains(containing))
        }
    }

    func open(_ sim: VCSim, _ uri: String, password: String = VCSim.password) throws {
        let dir = try TemporaryDirectory()
        _ = try ESXiScheme(settings: try ESXiReadTests.settings(dir, password: password)).openSource(uri, policy: SourcePolicy())
    }

    @Test func wrongPasswordIsAnAuthenticationError() throws {
        guard let sim = try VCSim() else { return }
        try sim.put("a/a.bin", [1, 2, 3])
        expectError(.authentication, "refused user") { try open(sim, sim.uri("a/a.bin"), password: "wrong") }
    }

    @Test func certificateMustMatchThePin() throws {
        guard let sim = try VCSim() else { return }
        try sim.put("a/a.bin", [1, 2, 3])
        let other = String(repeating: "00:", count: 31) + "00"
        let uri = sim.uri("a/a.bin", pin: false)
        expectError(.certificate, "not the pinned") { try open(sim, uri + "?fingerprint=" + other) }
        // No pin and a self-signed certificate: the fingerprint and the exact flag are printed.
        expectError(.certificate, "?fingerprint=\(sim.fingerprint) to the esxi:// URI") { try open(sim, uri) }
        #expect(try sim.stats()["requests"] == 0, "no request (no password) reached the host")
    }

    @Test func htmlPageMissingFileAndIgnoredRange() throws {
        guard let sim = try VCSim() else { return }
        try sim.put("a/a.bin", [UInt8](repeating: 7, count: 4096))
        // What a proxy or an ESXi error handler sends in place of a file.
        try sim.put("a/error.html", Array("<html><body>503 Service Unavailable</body></html>".utf8))
        expectError(.protocolViolation, "HTML") { try open(sim, sim.uri("a/error.html")) }
        expectError(.protocolViolation, "301") { try open(sim, sim.uri("a")) }
        expectError(.notFound, "404") { try open(sim, sim.uri("a/missing.vmdk")) }
        guard let ignoring = try VCSim(["-ignore-range"]) else { return }
        try ignoring.put("a/a.bin", [UInt8](repeating: 7, count: 4096))
        expectError(.protocolViolation, "not 206") { try open(ignoring, ignoring.uri("a/a.bin")) }
    }

    @Test func vmxWithTwoDisksAsksWhichOne() throws {
        guard let sim = try VCSim() else { return }
        let vmx = """
            displayName = "db"
            scsi0.present = "TRUE"
            scsi0:0.present = "TRUE"
            scsi0:0.fileName = "db.vmdk"
            scsi0:1.present = "TRUE"
            scsi0:1.fileName = "/vmfs/volumes/datastore2/db/db_1.vmdk"
            """
        try sim.put("db/db.vmx", Array(vmx.utf8))
        expectError(.notFound, "2 disks ([\(sim.datastore)] db/db.vmdk, [\(sim.datastore)] db/db_1.vmdk)") { try open(sim, sim.uri("db/db.vmx")) }
    }

    @Test func replyCutEveryTimeIsAnError() throws {
        guard let sim = try VCSim(["-cut-every", "1"]) else { return }
        try sim.put("a/a.bin", [UInt8](repeating: 7, count: 4 << 20))
        expectError(.network) { try open(sim, sim.uri("a/a.bin")) }
    }

    @Test func noPasswordAnywhereIsRefusedBeforeConnecting() throws {
        let location = try ESXiLocation(parsing: "esxi://root@127.0.0.1:1/[ds] a.vmdk")
        expectError(.authentication, "--password-file") {
            _ = try ESXiSettings().password(for: location, environment: [:])
        }
    }
}
