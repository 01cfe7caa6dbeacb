import FerryBinary

/// Writes registry hives (regf) from a tree of keys and values: ferry's own builder, so tests
/// and the demo need no hive from elsewhere. Output is checked against hivexsh/hivexget in the tests.
///
/// Layout: base block (4096 bytes), then hbins of 4096-byte multiples packed with cells in
/// depth-first order (nk, value list, vk, data, subkey list, children); each bin's unused tail
/// is one free cell. Subkey lists are `lh` (minor ≥ 5) or `lf`, sorted by uppercased name, and
/// split into an `ri` of leaves when a key has more than `maxLeafEntries` subkeys. Values larger
/// than 16344 bytes use `db` big data when minor ≥ 4.
public struct HiveBuilder: Sendable {
    public enum Value: Sendable, Equatable {
        case string(String)
        case expandString(String)
        case multiString([String])
        case dword(UInt32)
        case qword(UInt64)
        case binary([UInt8])

        var type: UInt32 {
            switch self {
            case .string: return 1
            case .expandString: return 2
            case .binary: return 3
            case .dword: return 4
            case .multiString: return 7
            case .qword: return 11
            }
        }

        var data: [UInt8] {
            func utf16z(_ s: String) -> [UInt8] { (Array(s.utf16) + [0]).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
            switch self {
            case .string(let s), .expandString(let s): return utf16z(s)
            case .multiString(let list): return list.flatMap(utf16z) + [0, 0]
            case .dword(let v): var w = ByteWriter(); w.writeLittleEndian(v); return w.bytes
            case .qword(let v): var w = ByteWriter(); w.writeLittleEndian(v); return w.bytes
            case .binary(let b): return b
            }
        }
    }

    struct Node: Sendable {
        var name: String
        var values: [(name: String, value: Value)] = []
        var children: [Node] = []
    }

    public var minorVersion: UInt32
    /// Leaves hold at most this many subkeys before an `ri` index is used.
    public var maxLeafEntries: Int
    /// Writes unequal sequence numbers (a hive whose write did not finish).
    public var dirty = false
    var root: Node

    public init(rootName: String = "ROOT", minorVersion: UInt32 = 5, maxLeafEntries: Int = 500) {
        root = Node(name: rootName)
        self.minorVersion = minorVersion
        self.maxLeafEntries = maxLeafEntries
    }

    /// Creates the key at `path` ("A\\B\\C") and its parents.
    public mutating func addKey(_ path: String) { _ = Self.descend(&root, Self.split(path)) { _ in } }

    /// Sets `name` under the key at `path`, creating keys as needed.
    public mutating func set(_ path: String, _ name: String, _ value: Value) {
        Self.descend(&root, Self.split(path)) { node in
            if let i = node.values.firstIndex(where: { $0.name.uppercased() == name.uppercased() }) {
                node.values[i].value = value
            } else {
                node.values.append((name, value))
            }
        }
    }

    static func split(_ path: String) -> [String] { path.split(separator: "\\").map(String.init) }

    @discardableResult
    static func descend(_ node: inout Node, _ parts: [String], _ body: (inout Node) -> Void) -> Bool {
        guard let first = parts.first else {
            body(&node)
            return true
        }
        let i: Int
        if let found = node.children.firstIndex(where: { $0.name.uppercased() == first.uppercased() }) {
            i = found
        } else {
            node.children.append(Node(name: first))
            i = node.children.count - 1
        }
        return descend(&node.children[i], Array(parts.dropFirst()), body)
    }

    /// The hive file.
    public func build() -> [UInt8] {
        var layout = CellLayout()
        let sk = layout.allocate(20 + Self.securityDescriptor.count)
        var cells: [(UInt32, [UInt8])] = []
        let rootOffset = emit(root, parent: 0, sk: sk, isRoot: true, layout: &layout, cells: &cells)
        var keyCount: UInt32 = 0
        Self.count(root, &keyCount)
        var skCell = ByteWriter()
        skCell.write(bytes: Array("sk".utf8))
        skCell.writeLittleEndian(UInt16(0))
        skCell.writeLittleEndian(sk)
        skCell.writeLittleEndian(sk)
        skCell.writeLittleEndian(keyCount)
        skCell.writeLittleEndian(UInt32(Self.securityDescriptor.count))
        skCell.write(bytes: Self.securityDescriptor)
        cells.append((sk, skCell.bytes))
        let bins = layout.finish(cells: cells)

        var base = ByteWriter(capacity: 4096)
        base.write(bytes: Array("regf".utf8))
        base.writeLittleEndian(UInt32(1))
        base.writeLittleEndian(UInt32(dirty ? 2 : 1))
        base.writeLittleEndian(UInt64(0))
        for v in [1, minorVersion, 0, 1, rootOffset, UInt32(bins.count), 1] { base.writeLittleEndian(v) }
        base.writeZeros(4096 - base.bytes.count)
        var sum: UInt32 = 0
        for i in 0..<127 { sum ^= base.bytes.littleEndian(UInt32.self, at: i * 4) ?? 0 }
        base.setLittleEndian(sum == 0 ? 1 : (sum == 0xFFFF_FFFF ? 0xFFFF_FFFE : sum), at: 508)
        return base.bytes + bins
    }

    /// Owner-less self-relative descriptor: revision 1, control SE_SELF_RELATIVE.
    static let securityDescriptor: [UInt8] = [1, 0, 0x00, 0x80] + [UInt8](repeating: 0, count: 16)

    static func count(_ node: Node, _ n: inout UInt32) {
        n += 1
        for child in node.children { count(child, &n) }
    }
}
