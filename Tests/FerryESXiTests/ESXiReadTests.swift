import FerryBinary
import FerryDisk
import FerryESXi
import FerryFormats
import FerryTestSupport
import Foundation
import Testing

/// Disks read from the vSphere simulator's /folder service over HTTPS, through ferry's own
/// VMDK reader, compared with `qemu-img convert -O raw` of the same files on the datastore.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ESXiReadTests {
    static func settings(_ dir: TemporaryDirectory, password: String = VCSim.password) throws -> ESXiSettings {
        let file = dir.file("password")
        try (password + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        var settings = ESXiSettings(passwordFile: file)
        settings.session.backoff = .milliseconds(10)
        return settings
    }

    /// Seeded data with holes: every third MiB written.
    static func rawImage(_ path: String, size: Int, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        print("esxi fixture \(path): seed \(seed)")
        var bytes = [UInt8](repeating: 0, count: size)
        for mib in stride(from: 0, to: size >> 20, by: 3) {
            let chunk = rng.bytes(1 << 20)
            bytes.replaceSubrange((mib << 20)..<((mib + 1) << 20), with: chunk)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func qemu(_ args: String...) throws {
        let r = try Tools.run("qemu-img", args)
        #expect(r.status == 0, "qemu-img \(args.joined(separator: " ")): \(r.stderr)")
    }

    /// qemu-img's reading of `path`, as raw bytes.
    static func oracle(_ path: String, _ dir: TemporaryDirectory) throws -> [UInt8] {
        let out = dir.file("oracle.raw")
        try qemu("convert", "-O", "raw", path, out)
        return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    static func readAll(_ disk: any BlockDevice) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(disk.size))
        try bytes.withUnsafeMutableBytes { buffer in
            var at = 0
            while at < buffer.count {
                let n = min(16 << 20, buffer.count - at)
                try disk.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + n]), at: UInt64(at))
                at += n
            }
        }
        return bytes
    }

    @Test(arguments: ["monolithicSparse", "monolithicFlat", "streamOptimized"])
    func vmdkMatchesQemu(subformat: String) throws {
        guard Tools.require("qemu-img", why: "makes the VMDKs and reads them as the oracle"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        try Self.rawImage(dir.file("src.raw"), size: 20 << 20, seed: UInt64(subformat.count))
        try FileManager.default.createDirectory(atPath: sim.file("vm"), withIntermediateDirectories: true)
        try Self.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=\(subformat)", dir.file("src.raw"), sim.file("vm/disk.vmdk"))
        let opened = try ESXiScheme(settings: try Self.settings(dir)).openSource(sim.uri("vm/disk.vmdk"), policy: SourcePolicy())
        #expect(opened.chain.images.first?.format == .vmdk)
        #expect(try Self.readAll(opened.disk) == Self.oracle(sim.file("vm/disk.vmdk"), dir))
        if subformat == "monolithicFlat" {
            #expect(opened.chain.images.first?.extents == ["vm/disk-flat.vmdk"])
        }
    }

    @Test func snapshotChainAndVMXMatchQemu() throws {
        guard Tools.require("qemu-img", "qemu-io", why: "make the snapshot chain and read it as the oracle"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        try Self.rawImage(dir.file("src.raw"), size: 12 << 20, seed: 44)
        try FileManager.default.createDirectory(atPath: sim.file("web"), withIntermediateDirectories: true)
        try Self.qemu("convert", "-f", "raw", "-O", "vmdk", dir.file("src.raw"), sim.file("web/web.vmdk"))
        try Self.qemu("create", "-q", "-f", "vmdk", "-b", "web.vmdk", "-F", "vmdk", sim.file("web/web-000001.vmdk"))
        let io = try Tools.run("qemu-io", ["-f", "vmdk", "-c", "write -P 0x5a 1M 300k", "-c", "write -P 0x33 7M 64k", sim.file("web/web-000001.vmdk")])
        #expect(io.status == 0, "\(io.stderr)")
        let vmx = """
            .encoding = "UTF-8"
            config.version = "8"
            virtualHW.version = "14"
            displayName = "web"
            guestOS = "windows9-64"
            scsi0.present = "TRUE"
            scsi0.virtualDev = "lsisas1068"
            scsi0:0.present = "TRUE"
            scsi0:0.fileName = "web-000001.vmdk"
            """
        try sim.put("web/web.vmx", Array(vmx.utf8))
        let scheme = ESXiScheme(settings: try Self.settings(dir))
        let expected = try Self.oracle(sim.file("web/web-000001.vmdk"), dir)
        for name in ["web/web-000001.vmdk", "web/web.vmx"] {
            let opened = try scheme.openSource(sim.uri(name), policy: SourcePolicy())
            #expect(opened.chain.images.map(\.role) == [.source, .parent], "\(name)")
            #expect(try Self.readAll(opened.disk) == expected, "\(name)")
        }
    }

    /// ESXi's own snapshot extents over HTTP: a COWD (`-delta`, vmfsSparse) and an seSparse
    /// child over a flat parent, as ESXi writes them (the parent named by an absolute
    /// /vmfs/volumes hint), read through esxi:// and compared with qemu-img's reading of the
    /// same files on the simulator's datastore.
    @Test(arguments: [("VMFSSPARSE", "vmfsSparse", "vm-000001-delta.vmdk"), ("SESPARSE", "seSparse", "vm-000001-sesparse.vmdk")])
    func esxiSnapshotExtentsMatchQemu(type: String, createType: String, file: String) throws {
        guard Tools.require("qemu-img", why: "make the parent and read the chain as the oracle"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        let capacity: UInt64 = 40 * 2048 + 8 * 3  // sectors: not a whole number of grain tables
        try Self.rawImage(dir.file("parent.raw"), size: Int(capacity * 512), seed: 61)
        try FileManager.default.createDirectory(atPath: sim.file("vm"), withIntermediateDirectories: true)
        try Self.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat", dir.file("parent.raw"), sim.file("vm/vm.vmdk"))
        let parent = try String(contentsOfFile: sim.file("vm/vm.vmdk"), encoding: .utf8)
        let cid = parent.split(separator: "\n").first { $0.hasPrefix("CID=") }?.dropFirst(4) ?? ""
        var rng = SeededRandom(seed: 62)
        let extent = createType == "seSparse"
            ? VMDKSnapshotExtent.seSparse(capacity: capacity, rng: &rng) : VMDKSnapshotExtent.cowd(capacity: capacity, rng: &rng)
        try sim.put("vm/" + file, extent)
        func descriptor(hint: String) -> String {
            VMDKSnapshotExtent.childDescriptor(capacity: capacity, type: type, createType: createType, file: file, parentCID: cid, hint: hint)
        }
        try sim.put("vm/vm-000001.vmdk", Array(descriptor(hint: "/vmfs/volumes/\(sim.datastore)/vm/vm.vmdk").utf8))
        // qemu does not resolve ESXi's absolute hints: its copy of the descriptor names the parent relatively.
        try descriptor(hint: "vm.vmdk").write(toFile: sim.file("vm/vm-000001-q.vmdk"), atomically: true, encoding: .utf8)
        let expected = try Self.oracle(sim.file("vm/vm-000001-q.vmdk"), dir)
        let opened = try ESXiScheme(settings: try Self.settings(dir)).openSource(sim.uri("vm/vm-000001.vmdk"), policy: SourcePolicy())
        #expect(opened.chain.images.map(\.role) == [.source, .parent])
        #expect(try Self.readAll(opened.disk) == expected)
    }

    /// Only allocated grains are fetched: reading a sparse VMDK's data extents costs the data
    /// plus its grain tables, not the virtual size.
    @Test func onlyAllocatedGrainsAreRequested() throws {
        guard Tools.require("qemu-img", why: "makes the sparse VMDK"), let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        let size = 60 << 20
        try Self.rawImage(dir.file("src.raw"), size: size, seed: 3)  // 20 of 60 MiB written
        try FileManager.default.createDirectory(atPath: sim.file("s"), withIntermediateDirectories: true)
        try Self.qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicSparse", dir.file("src.raw"), sim.file("s/s.vmdk"))
        let opened = try ESXiScheme(settings: try Self.settings(dir)).openSource(sim.uri("s/s.vmdk"), policy: SourcePolicy())
        let before = try sim.stats()["bytes"] ?? 0
        var data: UInt64 = 0
        for extent in try opened.disk.extents(at: 0, length: opened.disk.size) where extent.kind == .data {
            _ = try opened.disk.readBytes(at: extent.offset, count: Int(extent.length))
            data += extent.length
        }
        let served = (try sim.stats()["bytes"] ?? 0) - before
        #expect(data == 20 << 20)
        #expect(Double(served) <= 1.05 * Double(data), "served \(served) bytes for \(data) bytes of data")
    }

    @Test func extentOutsideTheDatastoreIsRefused() throws {
        guard let sim = try VCSim() else { return }
        let dir = try TemporaryDirectory()
        try sim.put("evil/evil.vmdk", Array(HostileImages.vmdkDescriptor(extent: "../../etc/passwd", sectors: 8).utf8))
        #expect {
            _ = try ESXiScheme(settings: try Self.settings(dir)).openSource(sim.uri("evil/evil.vmdk"), policy: SourcePolicy())
        } throws: { error in
            (error as? FormatError)?.code == .notAllowed
        }
    }

    @Test func cookieIsReusedAndRenewedWhenItExpires() throws {
        guard let sim = try VCSim(["-cookie-ttl", "1s"]) else { return }
        let dir = try TemporaryDirectory()
        try sim.put("f/data.bin", SeededRandom(seed: 5).bytesArray(3 << 20))
        let location = try ESXiLocation(parsing: sim.uri("f/data.bin"))
        let scheme = ESXiScheme(settings: try Self.settings(dir))
        let session = try scheme.connect(location)
        defer { session.close() }
        let file = try ESXiFile(session: session, datastore: sim.datastore, path: "f/data.bin")
        _ = try Self.readAll(file)
        #expect(session.basicLogins == 1, "Basic once, then the cookie")
        Thread.sleep(forTimeInterval: 1.5)  // past the simulated session lifetime (not a timing assertion)
        // A new file of the same session (a new page cache): its requests carry the stale cookie.
        let again = try Self.readAll(try ESXiFile(session: session, datastore: sim.datastore, path: "f/data.bin"))
        #expect(again == SeededRandom(seed: 5).bytesArray(3 << 20))
        #expect(session.basicLogins == 2, "the expired cookie got a 401 and Basic logged in again")
        #expect(try sim.stats()["rejected"] == 1)
    }

    /// 40 MiB of random bytes put at `path` and read back whole in 4 MiB ranges (checked);
    /// the session (closed), the file and the wrapper's counters after the read.
    static func readBig(_ sim: VCSim, _ path: String, seed: UInt64) throws -> (ESXiSession, ESXiFile, [String: Int]) {
        let dir = try TemporaryDirectory()
        let data = SeededRandom(seed: seed).bytesArray(40 << 20)
        try sim.put(path, data)
        var settings = try Self.settings(dir)
        settings.session.rangeSize = 4 << 20
        let session = try ESXiScheme(settings: settings).connect(try ESXiLocation(parsing: sim.uri(path)))
        defer { session.close() }
        let file = try ESXiFile(session: session, datastore: sim.datastore, path: path)
        #expect(try Self.readAll(file) == data)
        return (session, file, try sim.stats())
    }

    @Test func busyRepliesAndCutConnectionsAreRetried() throws {
        guard let sim = try VCSim(["-busy-every", "3", "-cut-every", "4"]) else { return }
        let (session, _, stats) = try Self.readBig(sim, "f/big.bin", seed: 9)
        #expect((stats["busy"] ?? 0) > 0 && (stats["cuts"] ?? 0) > 0, "\(stats)")
        #expect(session.busyReplies == stats["busy"])
    }

    /// A reply cut half-way is resumed from its last byte: the host serves each byte about
    /// once however often it cuts, where fetching a cut range again whole repeats half a
    /// range per cut (issue 13: "retries with the resume rules of send").
    @Test func aCutRangeIsResumedNotFetchedAgain() throws {
        guard let sim = try VCSim(["-cut-every", "4"]) else { return }
        let (_, file, stats) = try Self.readBig(sim, "f/cut.bin", seed: 13)
        let size = 40 << 20
        let cuts = stats["cuts"] ?? 0
        #expect(cuts > 0, "\(stats)")
        #expect(file.resumedRanges > 0 && file.resumedRanges <= cuts, "\(file.resumedRanges) resumed, \(cuts) cuts")
        // Every byte reached ferry exactly once: a cut range fetched again whole would bring
        // its first part twice (half a 4 MiB range per cut). Counted on ferry's side: what the
        // host wrote but a cut lost sits in socket buffers, which grow to megabytes on a loaded
        // loopback (a CI run saw 2.4 MiB for 3 cuts), so the host's count bounds nothing.
        let fetched = file.fetched.bytes
        #expect(fetched == UInt64(size), "ferry received \(fetched) bytes for a file of \(size) with \(cuts) cuts: cut ranges were fetched again")
        #expect((stats["bytes"] ?? 0) >= size, "\(stats)")
    }
}

extension SeededRandom {
    func bytesArray(_ count: Int) -> [UInt8] {
        var copy = self
        return copy.bytes(count)
    }
}
