import FerryBinary

extension NTFSFormatter {
    /// The user's files as a tree: directories (made for every path prefix) and files.
    struct FileTree {
        struct Node {
            var name: String
            var parent: Int?
            var children: [Int] = []
            var data: [UInt8]?
            var isDirectory: Bool { data == nil }
        }

        /// Node 0 is the root.
        var nodes = [Node(name: ".", parent: nil)]

        init(_ files: [String: [UInt8]]) throws {
            for path in files.keys.sorted() {
                let parts = path.split(separator: "/").map(String.init)
                guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.utf16.count <= 255 && $0 != "." && $0 != ".." }) else {
                    throw FormatError(.inconsistent, structure: "NTFS format", field: "path", "\"\(path)\" is not a file name")
                }
                var current = 0
                for (depth, part) in parts.enumerated() {
                    let isLast = depth == parts.count - 1
                    if let existing = nodes[current].children.first(where: { nodes[$0].name.uppercased() == part.uppercased() }) {
                        guard !isLast, nodes[existing].isDirectory else {
                            throw FormatError(.inconsistent, structure: "NTFS format", field: "path", "\"\(path)\" names a file twice")
                        }
                        current = existing
                        continue
                    }
                    nodes.append(Node(name: part, parent: current, data: isLast ? (files[path] ?? []) : nil))
                    nodes[current].children.append(nodes.count - 1)
                    current = nodes.count - 1
                }
            }
        }
    }

    /// What a record holds, beyond $STANDARD_INFORMATION and $FILE_NAME.
    enum Body {
        /// A non-resident unnamed $DATA stream.
        case data([UInt8])
        /// A directory's $I30 index over these records.
        case directory([Int])
        /// A system file encoded by its own rule (`NTFSFormatter+System.swift`).
        case system
    }

    /// One file of the new volume.
    struct File {
        var record: Int
        var name: String
        var parent: Int
        var body: Body
        var attributes: UInt32
        /// The clusters of its $DATA (or, for a directory, its INDX blocks).
        var runs: [DataRun] = []
        /// A directory's entries, split into INDX blocks (empty when they fit in the root).
        var blocks: [[Int]] = []
        var isDirectory: Bool { if case .directory = body { return true } else { return false } }
        var dataSize: UInt64 { if case .data(let bytes) = body { return UInt64(bytes.count) } else { return 0 } }
    }

    /// Where everything goes: record numbers, then clusters, first fit from the start.
    struct Layout {
        var totalSectors: UInt64
        var totalClusters: UInt64
        var files: [File] = []
        var mftRecords: Int
        var mftLCN: UInt64 = 0
        var mirrorLCN: UInt64 = 0
        var logClusters: UInt64
        private(set) var nextLCN: UInt64 = 2  // $Boot holds clusters 0 and 1

        init(sectors: UInt64, tree: FileTree) throws {
            // mkntfs leaves the last sector to the backup boot sector.
            totalSectors = sectors - 1
            totalClusters = totalSectors * UInt64(NTFSFormatter.sectorSize) / UInt64(NTFSFormatter.clusterSize)
            let userRecords = tree.nodes.count - 1
            mftRecords = max(64, (NTFSFormatter.firstUserRecord + userRecords + 3) / 4 * 4)
            // 256 KiB for volumes under 64 MiB, else 2 MiB (mkntfs scales it with the volume).
            logClusters = totalClusters < 16384 ? 64 : 512
            files = Self.systemFiles(tree: tree)
            try allocate(tree: tree)
        }

        var bitmapBytes: Int { Int((totalClusters + 63) / 64 * 8) }

        /// Records 0–11 (12–15 are reserved, 16–23 free), then one record per node of `tree`.
        private static func systemFiles(tree: FileTree) -> [File] {
            let hiddenSystem: UInt32 = 0x06
            var files = [
                File(record: 0, name: "$MFT", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 1, name: "$MFTMirr", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 2, name: "$LogFile", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 3, name: "$Volume", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 4, name: "$AttrDef", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 5, name: ".", parent: 5, body: .directory([]), attributes: hiddenSystem),
                File(record: 6, name: "$Bitmap", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 7, name: "$Boot", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 8, name: "$BadClus", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 9, name: "$Secure", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 10, name: "$UpCase", parent: 5, body: .system, attributes: hiddenSystem),
                File(record: 11, name: "$Extend", parent: 5, body: .directory([]), attributes: hiddenSystem),
            ]
            // Node i of the tree (i ≥ 1) is record firstUserRecord + i − 1; the root is record 5.
            func record(_ node: Int) -> Int { node == 0 ? 5 : NTFSFormatter.firstUserRecord + node - 1 }
            var rootChildren = Array(0...11).filter { $0 != 5 }  // the system files are listed in the root
            rootChildren.append(5)  // and the root lists itself as "."
            rootChildren += tree.nodes[0].children.map(record)
            files[5].body = .directory(rootChildren)
            for (index, node) in tree.nodes.enumerated().dropFirst() {
                let body: Body = node.data.map { .data($0) } ?? .directory(node.children.map(record))
                files.append(File(record: record(index), name: node.name, parent: record(node.parent ?? 0), body: body,
                                  attributes: node.isDirectory ? 0 : 0x20))
            }
            return files
        }

        mutating func take(_ clusters: UInt64) throws -> [DataRun] {
            guard clusters > 0 else { return [] }
            guard nextLCN + clusters <= totalClusters else {
                throw FormatError(.limitExceeded, structure: "NTFS format", field: "size", "the files do not fit the \(totalClusters)-cluster volume")
            }
            defer { nextLCN += clusters }
            return [DataRun(vcn: VCN(0), length: clusters, lcn: LCN(nextLCN))]
        }

        static func clusters(_ bytes: Int) -> UInt64 {
            UInt64((bytes + NTFSFormatter.clusterSize - 1) / NTFSFormatter.clusterSize)
        }

        /// Gives every stream and index its clusters, in record order after the metadata.
        private mutating func allocate(tree: FileTree) throws {
            let mft = try take(Self.clusters(mftRecords * NTFSFormatter.recordSize))
            mftLCN = mft[0].lcn?.value ?? 0
            files[0].runs = mft
            files[1].runs = try take(1)
            mirrorLCN = files[1].runs[0].lcn?.value ?? 0
            files[2].runs = try take(logClusters)
            files[4].runs = try take(Self.clusters(NTFSFormatter.attributeDefinitions().count))
            files[6].runs = try take(Self.clusters(bitmapBytes))
            files[7].runs = [DataRun(vcn: VCN(0), length: 2, lcn: LCN(0))]
            files[10].runs = try take(Self.clusters(131072))
            mftBitmapRuns = try take(1)
            for index in files.indices {
                switch files[index].body {
                case .data(let bytes):
                    files[index].runs = try take(Self.clusters(bytes.count))
                case .directory(let children):
                    files[index].blocks = try NTFSFormatter.indexBlocks(for: files[index], children: children, in: self)
                    files[index].runs = try take(UInt64(NTFSFormatter.indexBlockCount(files[index])))
                case .system:
                    break
                }
            }
        }

        /// $MFT's $BITMAP stream.
        var mftBitmapRuns: [DataRun] = []

        func file(_ record: Int) -> File? { files.first { $0.record == record } }

        /// The volume's cluster bitmap: every cluster handed out, and the clusters past the end
        /// of the volume in its last byte group (as mkntfs marks them).
        func clusterBitmap() -> [UInt8] {
            var bits = [UInt8](repeating: 0, count: bitmapBytes)
            func mark(_ lcn: UInt64) { bits[Int(lcn / 8)] |= 1 << (lcn % 8) }
            for lcn in 0..<nextLCN { mark(lcn) }
            for lcn in totalClusters..<UInt64(bitmapBytes * 8) { mark(lcn) }
            return bits
        }
    }
}
