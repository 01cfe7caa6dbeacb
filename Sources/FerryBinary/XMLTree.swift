/// A small, strict XML reader for the documents ferry receives from a peer it does not trust
/// (vSphere SOAP replies): elements, attributes, text, CDATA, comments and processing
/// instructions. Entities are the five predefined ones and character references only; a
/// `<!DOCTYPE` is refused, so no entity a document declares is ever expanded (no "billion
/// laughs", no external entity read from the host). Names keep their prefix; `local(_:)`
/// compares without it, which is all SOAP needs (ferry does not resolve namespaces).
///
/// Bounded: nesting depth, attribute count and the element count are capped, and every step
/// consumes input, so a hostile document costs time and memory linear in its size.
public enum XMLTree {
    /// One element: its qualified name, attributes in document order, children and the text
    /// directly inside it (character data of every text node and CDATA section, concatenated).
    public struct Element: Sendable, Equatable {
        public var name: String
        public var attributes: [(name: String, value: String)]
        public var children: [Element]
        public var text: String

        public init(name: String, attributes: [(name: String, value: String)] = [], children: [Element] = [], text: String = "") {
            self.name = name
            self.attributes = attributes
            self.children = children
            self.text = text
        }

        public static func == (a: Element, b: Element) -> Bool {
            a.name == b.name && a.text == b.text && a.children == b.children
                && a.attributes.map(\.name) == b.attributes.map(\.name) && a.attributes.map(\.value) == b.attributes.map(\.value)
        }

        /// The name without its namespace prefix (`soapenv:Body` → `Body`).
        public var localName: Substring { XMLTree.local(name) }

        /// The first child whose local name is `name`.
        public func child(_ name: String) -> Element? { children.first { $0.localName == name } }

        /// Every child whose local name is `name`.
        public func children(_ name: String) -> [Element] { children.filter { $0.localName == name } }

        /// The child reached through local names (`path("runtime", "powerState")`).
        public func path(_ names: String...) -> Element? {
            var at: Element? = self
            for name in names { at = at?.child(name) }
            return at
        }

        /// The value of the first attribute whose local name is `name` (`type` finds `xsi:type`).
        public func attribute(_ name: String) -> String? {
            attributes.first { XMLTree.local($0.name) == name }?.value
        }

        /// The text with surrounding white space removed.
        public var value: String {
            var scalars = Substring(text)
            while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
            while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
            return String(scalars)
        }
    }

    /// A document that is not well-formed, or breaks a limit: where and why.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "malformed XML at byte \(offset): \(reason)" }
    }

    public struct Limits: Sendable {
        public var depth = 128
        public var elements = 1_000_000
        public var attributesPerElement = 256
        public init() {}
    }

    /// The part of a qualified name after its prefix.
    public static func local(_ name: String) -> Substring {
        guard let colon = name.lastIndex(of: ":") else { return Substring(name) }
        return name[name.index(after: colon)...]
    }

    /// Parses a whole document and returns its root element.
    public static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(ParseError) -> Element {
        var reader = Reader(bytes: bytes, limits: limits)
        return try reader.document()
    }

    /// Escapes text for an element's content or a double-quoted attribute.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Control characters other than tab/CR/LF cannot appear in XML 1.0 at all.
                if c.value < 0x20, c != "\t", c != "\n", c != "\r" { out += "&#xFFFD;" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    private struct Reader {
        let bytes: [UInt8]
        let limits: Limits
        var at = 0
        var elementCount = 0

        init(bytes: [UInt8], limits: Limits) {
            self.bytes = bytes
            self.limits = limits
        }

        func fail(_ reason: String) -> ParseError { ParseError(offset: at, reason: reason) }

        var atEnd: Bool { at >= bytes.count }
        func peek(_ offset: Int = 0) -> UInt8? { at + offset < bytes.count ? bytes[at + offset] : nil }

        func starts(with text: String) -> Bool {
            let utf8 = Array(text.utf8)
            guard at + utf8.count <= bytes.count else { return false }
            return bytes[at..<at + utf8.count].elementsEqual(utf8)
        }

        mutating func skipSpace() {
            while let b = peek(), b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { at += 1 }
        }

        /// Moves past the next `terminator`, or fails naming what was left open.
        mutating func skip(past terminator: String, what: String) throws(ParseError) {
            let utf8 = Array(terminator.utf8)
            while at + utf8.count <= bytes.count {
                if bytes[at..<at + utf8.count].elementsEqual(utf8) {
                    at += utf8.count
                    return
                }
                at += 1
            }
            at = bytes.count
            throw fail("\(what) is not closed")
        }

        /// Prolog (XML declaration, comments, PIs), the root element, then only misc to the end.
        mutating func document() throws(ParseError) -> Element {
            if starts(with: "\u{FEFF}") { at += 3 }
            try misc()
            guard peek() == UInt8(ascii: "<") else { throw fail(atEnd ? "the document is empty" : "text before the root element") }
            let root = try element(depth: 1)
            try misc()
            guard atEnd else { throw fail("content after the root element") }
            return root
        }

        mutating func misc() throws(ParseError) {
            while true {
                skipSpace()
                if starts(with: "<?") {
                    try skip(past: "?>", what: "a processing instruction")
                } else if starts(with: "<!--") {
                    try skip(past: "-->", what: "a comment")
                } else if starts(with: "<!") {
                    throw fail("a DOCTYPE or declaration (ferry does not expand declared entities)")
                } else {
                    return
                }
            }
        }

        mutating func name() throws(ParseError) -> String {
            let start = at
            while let b = peek(), !(b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == UInt8(ascii: "/") || b == UInt8(ascii: ">")
                || b == UInt8(ascii: "=") || b == UInt8(ascii: "<") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") || b == UInt8(ascii: "&")) {
                at += 1
            }
            guard at > start else { throw fail("a name was expected") }
            let first = bytes[start]
            guard !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")), first != UInt8(ascii: "-"), first != UInt8(ascii: ".") else {
                throw fail("a name cannot start with \"\(Character(Unicode.Scalar(first)))\"")
            }
            return String(decoding: bytes[start..<at], as: UTF8.self)
        }

        /// An element starting at `<`: its attributes, then content up to the matching end tag.
        mutating func element(depth: Int) throws(ParseError) -> Element {
            guard depth <= limits.depth else { throw fail("elements nested more than \(limits.depth) deep") }
            elementCount += 1
            guard elementCount <= limits.elements else { throw fail("more than \(limits.elements) elements") }
            at += 1  // "<"
            var node = Element(name: try name())
            while true {
                let before = at
                skipSpace()
                guard let b = peek() else { throw fail("the start tag <\(node.name)> is not closed") }
                if b == UInt8(ascii: "/") {
                    guard peek(1) == UInt8(ascii: ">") else { throw fail("\"/\" not followed by \">\" in <\(node.name)>") }
                    at += 2
                    return node
                }
                if b == UInt8(ascii: ">") {
                    at += 1
                    break
                }
                guard at > before else { throw fail("attributes of <\(node.name)> are not separated by white space") }
                let attribute = try name()
                skipSpace()
                guard peek() == UInt8(ascii: "=") else { throw fail("attribute \"\(attribute)\" has no value") }
                at += 1
                skipSpace()
                guard let quote = peek(), quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else {
                    throw fail("the value of attribute \"\(attribute)\" is not quoted")
                }
                at += 1
                let value = try characters(until: quote, what: "the value of attribute \"\(attribute)\"")
                at += 1
                guard !node.attributes.contains(where: { $0.name == attribute }) else { throw fail("attribute \"\(attribute)\" appears twice") }
                guard node.attributes.count < limits.attributesPerElement else {
                    throw fail("more than \(limits.attributesPerElement) attributes in <\(node.name)>")
                }
                node.attributes.append((attribute, value))
            }
            // Content.
            while true {
                guard !atEnd else { throw fail("<\(node.name)> is not closed") }
                if starts(with: "</") {
                    at += 2
                    let closing = try name()
                    guard closing == node.name else { throw fail("</\(closing)> closes <\(node.name)>") }
                    skipSpace()
                    guard peek() == UInt8(ascii: ">") else { throw fail("the end tag </\(closing)> is not closed") }
                    at += 1
                    return node
                } else if starts(with: "<![CDATA[") {
                    at += 9
                    let start = at
                    try skip(past: "]]>", what: "a CDATA section")
                    node.text += String(decoding: bytes[start..<at - 3], as: UTF8.self)
                } else if starts(with: "<!--") {
                    try skip(past: "-->", what: "a comment")
                } else if starts(with: "<?") {
                    try skip(past: "?>", what: "a processing instruction")
                } else if starts(with: "<!") {
                    throw fail("a declaration inside <\(node.name)>")
                } else if peek() == UInt8(ascii: "<") {
                    node.children.append(try element(depth: depth + 1))
                } else {
                    node.text += try characters(until: UInt8(ascii: "<"), what: "the text of <\(node.name)>")
                }
            }
        }

        /// Character data up to (not past) `end`, with references replaced.
        mutating func characters(until end: UInt8, what: String) throws(ParseError) -> String {
            var out: [UInt8] = []
            while true {
                guard let b = peek() else {
                    if end == UInt8(ascii: "<") { return String(decoding: out, as: UTF8.self) }
                    throw fail("\(what) is not closed")
                }
                if b == end { return String(decoding: out, as: UTF8.self) }
                if b == UInt8(ascii: "<") { throw fail("\"<\" in \(what)") }
                if b == UInt8(ascii: "&") {
                    out += try reference()
                } else {
                    out.append(b)
                    at += 1
                }
            }
        }

        /// `&name;` or `&#N;` / `&#xN;` at `at`, as UTF-8.
        mutating func reference() throws(ParseError) -> [UInt8] {
            let start = at
            at += 1
            var body: [UInt8] = []
            while let b = peek(), b != UInt8(ascii: ";") {
                guard body.count < 12 else { at = start; throw fail("an \"&\" that starts no reference") }
                body.append(b)
                at += 1
            }
            guard peek() == UInt8(ascii: ";") else { at = start; throw fail("a reference without \";\"") }
            at += 1
            let text = String(decoding: body, as: UTF8.self)
            switch text {
            case "lt": return [UInt8(ascii: "<")]
            case "gt": return [UInt8(ascii: ">")]
            case "amp": return [UInt8(ascii: "&")]
            case "quot": return [UInt8(ascii: "\"")]
            case "apos": return [UInt8(ascii: "'")]
            default:
                var number: UInt32?
                if text.hasPrefix("#x") || text.hasPrefix("#X") {
                    number = UInt32(text.dropFirst(2), radix: 16)
                } else if text.hasPrefix("#") {
                    number = UInt32(text.dropFirst(), radix: 10)
                } else {
                    at = start
                    throw fail("the entity \"&\(text);\" is not one of XML's five (ferry does not read declared entities)")
                }
                guard let number, number != 0, let scalar = Unicode.Scalar(number) else {
                    at = start
                    throw fail("\"&\(text);\" is not a character")
                }
                return Array(String(Character(scalar)).utf8)
            }
        }
    }
}
