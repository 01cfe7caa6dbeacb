import FerryBinary

extension VMDK {
    /// The text descriptor (technote §"The Descriptor File"): header keys, the
    /// extent list, and the disk database (ignored). Lines may end in CRLF.
    struct Descriptor: Sendable, Equatable {
        enum Access: String, Sendable { case rw = "RW", readOnly = "RDONLY", noAccess = "NOACCESS" }
        enum ExtentType: String, Sendable {
            case flat = "FLAT", sparse = "SPARSE", zero = "ZERO", vmfs = "VMFS"
            case vmfsSparse = "VMFSSPARSE", seSparse = "SESPARSE", vmfsRDM = "VMFSRDM", vmfsRaw = "VMFSRAW"
        }
        struct ExtentLine: Sendable, Equatable {
            var access: Access
            var sectors: UInt64
            var type: ExtentType
            var fileName: String?
            /// Sector offset into the file (FLAT only).
            var offset: UInt64
        }

        var version: Int = 1
        var cid: UInt32 = 0
        var parentCID: UInt32 = VMDK.noParent
        var createType: String = ""
        var parentFileNameHint: String?
        var extents: [ExtentLine] = []

        static let structure = "VMDK descriptor"

        init(parsing text: String, file: String, baseOffset: UInt64 = 0) throws {
            var lineNumber = 0
            var sawVersion = false
            for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
                lineNumber += 1
                let line = raw.trimmingCharacters(in: " \t\r\0")
                if line.isEmpty || line.hasPrefix("#") { continue }
                func fail(_ detail: String) -> FormatError {
                    FormatError(.inconsistent, structure: Self.structure, field: "line \(lineNumber)", offset: baseOffset,
                                file: file, detail + ": \(line.prefix(120))")
                }
                if let eq = line.firstIndex(of: "="), !Self.isExtentLine(line) {
                    let key = line[..<eq].trimmingCharacters(in: " \t").lowercased()
                    let value = line[line.index(after: eq)...].trimmingCharacters(in: " \t\"")
                    switch key {
                    case "version":
                        guard let v = Int(value), (1...3).contains(v) else { throw fail("unsupported descriptor version") }
                        version = v
                        sawVersion = true
                    case "cid":
                        guard let v = UInt32(value, radix: 16) else { throw fail("CID is not a 32-bit hex number") }
                        cid = v
                    case "parentcid":
                        guard let v = UInt32(value, radix: 16) else { throw fail("parentCID is not a 32-bit hex number") }
                        parentCID = v
                    case "createtype": createType = value
                    case "parentfilenamehint": parentFileNameHint = value
                    default: break  // encoding, ddb.*, isNativeSnapshot… do not affect reading
                    }
                    continue
                }
                guard extents.count < FormatLimits.maxExtents else {
                    throw fail("more than \(FormatLimits.maxExtents) extents")
                }
                extents.append(try Self.parseExtent(Substring(line), fail: fail))
            }
            guard sawVersion else {
                throw FormatError(.badMagic, structure: Self.structure, field: "version", offset: baseOffset, file: file,
                                  "no version= line; this is not a VMDK descriptor")
            }
        }

        private static func isExtentLine(_ line: String) -> Bool {
            ["RW ", "RDONLY ", "NOACCESS "].contains { line.hasPrefix($0) }
        }

        /// `ACCESS SECTORS TYPE ["FILENAME" [OFFSET]]`
        private static func parseExtent(_ line: Substring, fail: (String) -> FormatError) throws -> ExtentLine {
            var rest = line
            func word() -> Substring {
                while rest.first == " " || rest.first == "\t" { rest.removeFirst() }
                let end = rest.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? rest.endIndex
                defer { rest = rest[end...] }
                return rest[..<end]
            }
            guard let access = Access(rawValue: String(word())) else { throw fail("unknown extent access mode") }
            guard let sectors = UInt64(word()) else { throw fail("extent size is not a number") }
            guard let type = ExtentType(rawValue: String(word()).uppercased()) else { throw fail("unknown extent type") }
            while rest.first == " " || rest.first == "\t" { rest.removeFirst() }
            var fileName: String?
            if rest.first == "\"" {
                rest.removeFirst()
                guard let close = rest.firstIndex(of: "\"") else { throw fail("unterminated extent file name") }
                fileName = String(rest[..<close])
                rest = rest[rest.index(after: close)...]
            }
            var offset: UInt64 = 0
            let tail = word()
            if !tail.isEmpty {
                guard let value = UInt64(tail) else { throw fail("extent offset is not a number") }
                offset = value
            }
            if type != .zero && (fileName ?? "").isEmpty { throw fail("extent has no file name") }
            return ExtentLine(access: access, sectors: sectors, type: type, fileName: fileName, offset: offset)
        }
    }
}
