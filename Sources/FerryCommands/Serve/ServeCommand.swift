public import ArgumentParser
import FerryNBD
import Foundation

/// `ferry serve SRC… --nbd unix:PATH | tcp:HOST:PORT [--writable] [--run CMD] [--tls-certificates DIR]`
public struct ServeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Export disks over NBD, for nbdcopy, qemu-img, qemu, nbdinfo and the kernel's nbd-client.",
        discussion: """
            Every source ferry reads (a raw file or block device, VMDK, qcow2, VHD, VHDX, OVA, an \
            nbd:// URI) becomes one export, named by its file name; the first is also the default \
            export (""). Clients get structured replies and base:allocation block status from the \
            source's own extents, so holes are never read. Exports are read-only unless --writable \
            (raw files and block devices only). Several clients may connect at once (multi-conn).

            With --run, ferry serves for as long as CMD runs (/bin/sh -c CMD, with $uri set to \
            the first export's NBD URI and $nbd_uri_N to export N) and exits with CMD's status; \
            SIGINT and SIGTERM are passed on to CMD. Without it, ferry serves until SIGINT or \
            SIGTERM, then closes the connections, removes its socket file and exits 0. With --socket-activation, ferry \
            serves on the socket systemd passes (LISTEN_FDS=1, fd 3) instead of --nbd.

            With --tls-certificates DIR (or --tls-psk FILE), clients must start TLS (NBD_OPT_STARTTLS) \
            before any other option, as with qemu-nbd --tls-creds or nbdkit --tls=require; $uri is \
            then an nbds:// URI with tls-certificates=DIR (or tls-psk-file=FILE and its first user), \
            for nbdinfo, nbdcopy and ferry.

            Examples:
              ferry serve old.vmdk --run 'nbdcopy "$uri" /dev/vg/new'
              ferry serve disk.qcow2 --nbd tcp:0.0.0.0:10809
              ferry serve disk.qcow2 --nbd tcp:0.0.0.0:10809 --tls-certificates /etc/pki/ferry
            """ + "\n\n" + FerryExit.helpLine)

    @Argument(help: "Files, block devices, images or nbd:// URIs to export.")
    var sources: [String]

    @Option(help: ArgumentHelp("Where to listen: unix:PATH or tcp:HOST:PORT (port 0: any free port).", valueName: "ADDRESS"))
    var nbd: String?

    @Flag(help: "Let clients write (raw files and block devices only).")
    var writable = false

    @Option(
        name: .customLong("run"),
        help: ArgumentHelp("Serve while this shell command runs, with $uri set; exit with its status.", valueName: "CMD"))
    var command: String?

    @Flag(help: "Serve on the listening socket systemd passes (LISTEN_FDS, fd 3) instead of --nbd.")
    var socketActivation = false

    @Option(
        help: ArgumentHelp(
            "Require TLS, with DIR/server-cert.pem and DIR/server-key.pem (as qemu-nbd and nbdkit name them).", valueName: "DIR"))
    var tlsCertificates: String?

    @Flag(help: "With --tls-certificates: accept only clients with a certificate signed by DIR/ca-cert.pem.")
    var tlsVerifyPeer = false

    @Option(help: ArgumentHelp("Require TLS-PSK with the USERNAME:HEXKEY lines of FILE (psktool's format) instead of certificates.", valueName: "FILE"))
    var tlsPsk: String?

    @OptionGroup var sourceOptions: SourceOptions

    public init() {}

    public func validate() throws {
        if socketActivation == (nbd != nil) && !(nbd == nil && command != nil) {
            throw ValidationError(socketActivation ? "--socket-activation and --nbd exclude each other" : "say where to listen: --nbd unix:PATH or --nbd tcp:HOST:PORT (or --run, or --socket-activation)")
        }
        if socketActivation, command != nil { throw ValidationError("--run needs an address ferry makes, not --socket-activation") }
        if let nbd { _ = try ServeFrontEnd.parseAddress(nbd) }
        if tlsVerifyPeer, tlsCertificates == nil { throw ValidationError("--tls-verify-peer needs --tls-certificates DIR") }
        if tlsPsk != nil, tlsCertificates != nil { throw ValidationError("--tls-psk and --tls-certificates exclude each other") }
    }

    public func run() throws {
        let config = ServeFrontEnd.Configuration(
            sources: sources, address: try nbd.map(ServeFrontEnd.parseAddress), socketActivation: socketActivation,
            writable: writable, run: command, policy: sourceOptions.policy,
            tls: tlsCertificates != nil || tlsPsk != nil ? NBDServerTLS(certificates: tlsCertificates, verifyPeer: tlsVerifyPeer, pskFile: tlsPsk) : nil)
        let status = try ServeFrontEnd.serve(config)
        if status != 0 { throw ExitCode(status) }
    }
}
