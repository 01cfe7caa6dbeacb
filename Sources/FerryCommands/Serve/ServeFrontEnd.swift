import ArgumentParser
import FerryDisk
import FerryFormats
import FerryNBD
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `ferry serve` does: open the sources, start `NBDServer`, then wait for `--run`'s
/// command or a signal, and tear everything down.
enum ServeFrontEnd {
    struct Configuration {
        var sources: [String]
        var address: NBDListenAddress?
        var socketActivation: Bool
        var writable: Bool
        var run: String?
        var policy: SourcePolicy
        /// TLS required (`--tls-certificates`); nil: plaintext, STARTTLS refused.
        var tls: NBDServerTLS?
    }

    /// `unix:PATH`, `tcp:HOST:PORT`, `tcp:[V6]:PORT`.
    static func parseAddress(_ text: String) throws -> NBDListenAddress {
        if text.hasPrefix("unix:"), text.count > 5 { return .unix(path: String(text.dropFirst(5))) }
        if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            if let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (0...65535).contains(port) {
                var host = String(rest[..<colon])
                if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                if !host.isEmpty { return .tcp(host: host, port: port) }
            }
        }
        throw ValidationError("--nbd \(text): write unix:PATH or tcp:HOST:PORT")
    }

    /// Opens every source as an export; their names are the file names (a URI's export name).
    static func exports(_ config: Configuration) throws -> [NBDServedExport] {
        var served: [NBDServedExport] = []
        do {
            for path in config.sources {
                let name = (path as NSString).lastPathComponent
                guard !served.contains(where: { $0.spec.name == name }) else {
                    throw ValidationError("two sources are named \(name): each export needs its own name")
                }
                let disk: any BlockDevice
                if config.writable {
                    let opened = try DiskImage.open(source: path, policy: config.policy)
                    let format = opened.chain.images.first?.format
                    try opened.disk.close()
                    guard format == .raw, try DiskSchemes.scheme(for: path) == nil else {
                        throw DiskError(.unsupported, path, operation: "open", "--writable serves raw files and block devices only (this is \(format.map { "\($0)" } ?? "a URI"))")
                    }
                    disk = try FileDevice.openForWriting(path)
                } else {
                    disk = try DiskImage.open(source: path, policy: config.policy).disk
                }
                let spec = NBDExportSpec(name: name, size: disk.size, writable: config.writable, extents: disk.capabilities.contains(.extents))
                served.append(NBDServedExport(spec: spec, device: disk))
            }
        } catch {
            for export in served { try? export.device.close() }
            throw error
        }
        return served
    }

    /// Serves until `--run`'s command ends (its status) or SIGINT or SIGTERM stops ferry (0).
    /// Either way the connections are closed and the socket file ferry made is removed.
    static func serve(_ config: Configuration) throws -> Int32 {
        // Before any thread starts, so that no signal finds ferry without its handler.
        let signals = try ServeSignals.install()
        var listen = config.address
        var scratch: String?
        if config.socketActivation {
            let env = ProcessInfo.processInfo.environment
            guard env["LISTEN_FDS"] == "1", env["LISTEN_PID"].flatMap({ Int32($0) }) == getpid() else {
                throw ValidationError("--socket-activation: LISTEN_FDS=1 and LISTEN_PID=\(getpid()) must be set (systemd sets them)")
            }
            listen = .socket(3)
        } else if listen == nil {
            // --run without --nbd: a private socket in a fresh directory, removed afterwards.
            var template = Array(((NSTemporaryDirectory() as NSString).appendingPathComponent("ferry-serve.XXXXXX")).utf8CString)
            guard let dir = template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap { mkdtemp($0) } }) else {
                throw DiskError.system(errno, NSTemporaryDirectory(), operation: "create", context: "a directory for the NBD socket")
            }
            scratch = String(cString: dir)
            listen = .unix(path: (scratch ?? "") + "/nbd.sock")
        }
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        guard let listen else { throw ValidationError("no address to listen on") }
        let exports = try exports(config)
        defer { for export in exports { try? export.device.close() } }
        let server = try NBDServer(exports: exports, listen: listen, tls: config.tls)
        defer { server.close() }
        let uri = server.uri() ?? "(the socket systemd passed)"
        try? FileHandle.standardError.write(contentsOf: Data("ferry: serving \(exports.count) export\(exports.count == 1 ? "" : "s")\(config.tls == nil ? "" : " over TLS") at \(uri)\n".utf8))
        guard let command = config.run else {
            while !signals.wait(milliseconds: -1).contains(where: { ServeSignals.stopSignals.contains($0.number) }) {}
            ServeSignals.restoreStopDefaults()
            return 0
        }
        return try runCommand(command, server: server, signals: signals)
    }

    /// Runs `--run`'s command until it ends and returns its status (128+N after signal N).
    /// SIGINT and SIGTERM sent to ferry go on to the command; a terminal's Ctrl-C reached it
    /// already (same process group), so that one is not sent twice.
    private static func runCommand(_ command: String, server: NBDServer, signals: ServeSignals) throws -> Int32 {
        var env = ProcessInfo.processInfo.environment
        env["uri"] = server.uri()
        for index in server.exports.indices { env["nbd_uri_\(index)"] = server.uri(export: index) }
        if case .unix(let path) = server.listening { env["unixsocket"] = path }
        let child = try ServeChild.spawn(command, environment: env)
        while true {
            if let status = child.reap() { return status }
            // SIGCHLD wakes this at once; the timeout only bounds a missed wake-up.
            for received in signals.wait(milliseconds: 1000) where ServeSignals.stopSignals.contains(received.number) && !received.fromTerminal {
                kill(child.pid, received.number)
            }
        }
    }
}
