import FerryBinary
import FerryTestSupport
import Testing

/// The XML reader ferry uses for vSphere replies: what it reads, and every way it refuses.
@Suite struct XMLTreeTests {
    func parse(_ text: String) throws -> XMLTree.Element { try XMLTree.parse(Array(text.utf8)) }

    @Test func readsASOAPReply() throws {
        let root = try parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="x">
            <soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
              <objects><obj type="VirtualMachine">vm-1</obj>
                <propSet><name>name</name><val xsi:type="xsd:string">web &amp; db &lt;1&gt; &#233;&#x4E2D;</val></propSet>
                <propSet><name>note</name><val><![CDATA[<not a tag> & raw]]></val></propSet>
                <empty/><spaced a = 'x' b="y" ></spaced>
              </objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>
            """)
        #expect(root.name == "soapenv:Envelope")
        #expect(root.localName == "Envelope")
        let objects = try #require(root.path("Body", "RetrievePropertiesExResponse", "returnval", "objects"))
        #expect(objects.child("obj")?.value == "vm-1")
        #expect(objects.child("obj")?.attribute("type") == "VirtualMachine")
        let sets = objects.children("propSet")
        #expect(sets.count == 2)
        #expect(sets[0].child("val")?.value == "web & db <1> é中")
        #expect(sets[0].child("val")?.attribute("type") == "xsd:string", "xsi:type is found by its local name")
        #expect(sets[1].child("val")?.value == "<not a tag> & raw")
        #expect(objects.child("empty")?.children.isEmpty == true)
        #expect(objects.child("spaced")?.attribute("a") == "x")
        #expect(objects.child("spaced")?.attribute("b") == "y")
    }

    @Test(arguments: [
        ("", "empty"),
        ("<a>", "not closed"),
        ("<a></b>", "</b> closes <a>"),
        ("<a><b></a>", "closes <b>"),
        ("text<a/>", "text before the root"),
        ("<a/><b/>", "content after the root"),
        ("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", "DOCTYPE"),
        ("<a>&x;</a>", "not one of XML's five"),
        ("<a>&#0;</a>", "not a character"),
        ("<a>&#xD800;</a>", "not a character"),
        ("<a>& b</a>", "reference"),
        ("<a b=c/>", "not quoted"),
        ("<a b=\"1\" b=\"2\"/>", "appears twice"),
        ("<a b=\"1\"c=\"2\"/>", "not separated"),
        ("<a b=\"<\"/>", "\"<\" in"),
        ("<a><!-- x </a>", "comment is not closed"),
        ("<a><![CDATA[x</a>", "CDATA section is not closed"),
        ("<1a/>", "cannot start with"),
        ("<a b/>", "has no value"),
    ])
    func refusesMalformedDocuments(text: String, reason: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            (error as? XMLTree.ParseError)?.reason.contains(reason) == true
        }
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "<a>", count: 200) + String(repeating: "</a>", count: 200)
        #expect(throws: XMLTree.ParseError.self) { _ = try parse(deep) }
        var limits = XMLTree.Limits()
        limits.depth = 300
        #expect(try XMLTree.parse(Array(deep.utf8), limits: limits).children.count == 1)
        limits.elements = 10
        #expect(throws: XMLTree.ParseError.self) { _ = try XMLTree.parse(Array(deep.utf8), limits: limits) }
    }

    @Test func escapedTextReadsBack() throws {
        let text = "a<b>&\"c'\u{1}é"
        let root = try parse("<x y=\"\(XMLTree.escaped(text))\">\(XMLTree.escaped(text))</x>")
        #expect(root.value == "a<b>&\"c'\u{FFFD}é")
        #expect(root.attribute("y") == "a<b>&\"c'\u{FFFD}é")
    }

    /// Seeded mutants of a SOAP reply: the reader ends with an element or a `ParseError`,
    /// never a trap (coverage-guided runs: FuzzTesting's FuzzXML).
    @Test func mutantsNeverTrap() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("XMLTreeTests.mutantsNeverTrap seed \(seed)")
        var random = SeededRandom(seed: seed)
        let base = Array("<?xml version=\"1.0\"?><e:E xmlns:e=\"s\"><e:B><R><v t=\"x\">a &amp; &#65; <![CDATA[c]]></v><!--k--><w/></R></e:B></e:E>".utf8)
        for _ in 0..<3000 {
            var mutant = base
            for _ in 0..<Int(random.next() % 6 + 1) {
                let at = Int(random.next() % UInt64(mutant.count))
                mutant[at] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 4 == 0 { mutant = Array(mutant.prefix(Int(random.next() % UInt64(mutant.count)))) }
            _ = try? XMLTree.parse(mutant)
        }
    }
}
