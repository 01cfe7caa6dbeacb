import FerryESXi
import FerryFormats
import Testing

/// `esxi://` URIs: what they name, and the names that must be refused before any request.
@Suite struct ESXiLocationTests {
    @Test func datastoreFileWithPortAndPin() throws {
        let pin = String(repeating: "ab:", count: 31) + "ab"
        let location = try ESXiLocation(parsing: "esxi://root@esx1.lan:8443/[datastore1] web/web.vmdk?fingerprint=\(pin)")
        #expect(location.user == "root")
        #expect(location.host == "esx1.lan")
        #expect(location.port == 8443)
        #expect(location.target == .file(datastore: "datastore1", path: "web/web.vmdk"))
        #expect(location.fingerprint?.description == String(repeating: "AB:", count: 31) + "AB")
        #expect(location.origin == "https://esx1.lan:8443")
    }

    @Test func percentEncodedPathAndVMName() throws {
        let encoded = try ESXiLocation(parsing: "esxi://admin%40corp@h/%5Bds%202%5D%20a%20b/c.vmdk")
        #expect(encoded.user == "admin@corp")
        #expect(encoded.target == .file(datastore: "ds 2", path: "a b/c.vmdk"))
        #expect(encoded.port == 443)
        let vm = try ESXiLocation(parsing: "esxi://root@h/web01")
        #expect(vm.target == .vm(name: "web01"))
    }

    @Test(arguments: [
        "esxi://root@h/[ds] ../etc/passwd",
        "esxi://root@h/[ds] vm/../../x.vmdk",
        "esxi://root@h/[ds] /vmfs/volumes/x.vmdk",
        "esxi://root@h/[ds] ",
        "esxi://root:pw@h/[ds] vm/vm.vmdk",
        "esxi://h/[ds] vm/vm.vmdk",
        "esxi://root@h:99999/[ds] a.vmdk",
        "esxi://root@h/[ds a.vmdk",
        "esxi://root@h/[ds] a.vmdk?fingerprint=abc",
        "esxi://root@h/[ds] a.vmdk?color=red",
        "esxi://root@h/web?disk=0",
    ])
    func badNamesAreRefused(uri: String) {
        #expect {
            _ = try ESXiLocation(parsing: uri)
        } throws: { error in
            (error as? ESXiError)?.code == .badName
        }
    }

    /// A host alone is a name for `ferry esxi ls`, and no disk: opening it is refused before
    /// any password is looked for or any connection made.
    @Test func aHostAloneNamesNoDisk() throws {
        #expect(try ESXiLocation(parsing: "esxi://root@h").target == .host)
        #expect(try ESXiLocation(parsingHost: "root@h:8443").port == 8443)
        #expect(try ESXiLocation(parsing: "esxi://root@h/web?disk=2").disk == 2)
        #expect(throws: ESXiError.self) { _ = try ESXiLocation(parsingHost: "root@h/web") }
        #expect {
            _ = try ESXiScheme(settings: ESXiSettings(passwordFile: "/nonexistent/pw")).openSource("esxi://root@h", policy: SourcePolicy())
        } throws: { error in
            (error as? ESXiError)?.code == .badName && "\(error)".contains("names a host, not a disk")
        }
    }

    @Test func fingerprintForms() throws {
        let hex = String(repeating: "0f", count: 32)
        let plain = try CertificateFingerprint(parsing: hex)
        let colons = try CertificateFingerprint(parsing: "sha256:" + stride(from: 0, to: 64, by: 2).map { i in
            String(hex[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 2)]).uppercased()
        }.joined(separator: ":"))
        #expect(plain == colons)
        #expect(plain.bytes == [UInt8](repeating: 15, count: 32))
    }
}
