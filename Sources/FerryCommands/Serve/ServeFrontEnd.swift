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

    /// Serves until `--run`'s command ends (its status) or a signal stops ferry (0).
    static func serve(_ config: Configuration) throws -> Int32 {
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
        let server = try NBDServer(exports: exports, listen: listen)
        defer { server.close() }
        let uri = server.uri() ?? "(the socket systemd passed)"
        try? FileHandle.standardError.write(contentsOf: Data("ferry: serving \(exports.count) export\(exports.count == 1 ? "" : "s") at \(uri)\n".utf8))
        guard let command = config.run else {
            waitForSignal()
            return 0
        }
        return try runCommand(command, server: server)
    }

    private static func runCommand(_ command: String, server: NBDServer) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var env = ProcessInfo.processInfo.environment
        env["uri"] = server.uri()
        for index in server.exports.indices { env["nbd_uri_\(index)"] = server.uri(export: index) }
        if case .unix(let path) = server.listening { env["unixsocket"] = path }
        process.environment = env
        try process.run()
        process.waitUntilExit()
        switch process.terminationReason {
        case .exit: return process.terminationStatus
        case .uncaughtSignal: return 128 + process.terminationStatus
        @unknown default: return 1
        }
    }

    /// Blocks until SIGINT or SIGTERM.
    private static func waitForSignal() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var signal: Int32 = 0
        sigwait(&set, &signal)
    }
}
