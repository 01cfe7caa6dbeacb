@testable import FerryTarget
import FerryTestSupport
import Foundation
import Testing

/// libvirt's own tools judge the domain XML: `virt-xml-validate` against the domain schema,
/// and `virsh -c test:///default define` parses it into a domain (Debian libvirt-clients).
@Suite struct LibvirtOracleTests {
    @Test(arguments: Fixture.all)
    func validatesAndDefines(_ name: String) throws {
        guard Tools.require("virt-xml-validate", "virsh", why: "libvirt's schema and test driver judge the domain XML") else { return }
        let dir = try TemporaryDirectory("ferry-libvirt")
        for bridge in [nil, "br-vm"] as [String?] {
            let xml = LibvirtRenderer.render(try RendererGoldenTests.plan(name), RenderOptions(bridge: bridge))
            let file = dir.file("\(name).xml")
            try Data(xml.utf8).write(to: URL(fileURLWithPath: file))
            let validate = try Tools.run("virt-xml-validate", [file, "domain"])
            #expect(validate.status == 0, "virt-xml-validate \(name): \(validate.stdout)\(validate.stderr)")
            // The test driver keeps its state per connection: define, then read back what it kept.
            let define = try Tools.run("virsh", ["-c", "test:///default", "define", file])
            #expect(define.status == 0 && define.stdout.contains("defined"), "virsh define \(name): \(define.stdout)\(define.stderr)")
        }
    }

    /// The oracle is not a rubber stamp: a domain with a bus libvirt does not know is refused.
    @Test func schemaRefusesABadBus() throws {
        guard Tools.require("virt-xml-validate", why: "libvirt's schema judges the domain XML") else { return }
        let dir = try TemporaryDirectory("ferry-libvirt")
        let xml = LibvirtRenderer.render(try RendererGoldenTests.plan("esxi6-winxp")).replacing("bus='virtio'", with: "bus='vmware'")
        let file = dir.file("bad.xml")
        try Data(xml.utf8).write(to: URL(fileURLWithPath: file))
        #expect(try Tools.run("virt-xml-validate", [file, "domain"]).status != 0)
    }
}
