public import FerryDisk
public import NIOCore

/// A served export: what clients are told, and the disk behind it.
public struct NBDServedExport: Sendable {
    public var spec: NBDExportSpec
    public var device: any BlockDevice

    public init(spec: NBDExportSpec, device: any BlockDevice) {
        self.spec = spec
        self.device = device
    }
}

/// What the server does with one request of the transmission phase: checks it against the
/// export (the spec's errors: EINVAL past the end or for an unknown command, EPERM on a
/// read-only export, EOVERFLOW over the maximum payload), runs it on the disk, and writes the
/// reply (structured when agreed: READ as OFFSET_DATA/OFFSET_HOLE chunks from the disk's
/// extents, BLOCK_STATUS as `base:allocation` descriptors). Blocking: runs on a thread pool.
public enum NBDServerWork {
    /// Descriptors in one block status reply (a 1 MiB chunk at most).
    static let maxDescriptors = Int(NBD.Limit.metadataChunk / 8) - 1

    /// The errno a request must fail with before it touches the disk, or nil when it is valid.
    public static func check(_ request: NBDRequest, export: NBDExportSpec, agreement: NBDSessionAgreement) -> UInt32? {
        guard let command = request.command else { return NBD.Errno.einval }
        // A payload the command does not take (extended headers' PAYLOAD_LEN), consumed already.
        if request.payloadLength(extended: agreement.extendedHeaders) > 0, command != .write { return NBD.Errno.einval }
        let (end, overflow) = request.offset.addingReportingOverflow(request.length)
        switch command {
        case .read, .write, .trim, .writeZeroes, .cache, .blockStatus:
            guard !overflow, end <= export.size else { return NBD.Errno.einval }
        case .flush, .disconnect:
            break
        }
        switch command {
        case .read, .write:
            if request.length > NBD.Limit.payload { return NBD.Errno.eoverflow }
        case .blockStatus:
            guard agreement.structuredReplies, agreement.baseAllocation, request.length > 0 else { return NBD.Errno.einval }
        default: break
        }
        if [.write, .trim, .writeZeroes].contains(command), !export.writable { return NBD.Errno.eperm }
        return nil
    }

    /// Runs `request` (already checked) and returns its whole reply.
    public static func perform(
        _ request: NBDRequest, payload: ByteBuffer?, on device: any BlockDevice, export: NBDExportSpec,
        agreement: NBDSessionAgreement, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var out = allocator.buffer(capacity: 32)
        let cookie = request.cookie
        let extended = agreement.extendedHeaders
        func emit(_ reply: NBDReply) {
            if extended { reply.writeExtended(offset: request.offset, to: &out) } else { reply.write(to: &out) }
        }
        func failure(_ errno: UInt32, _ message: String) {
            if agreement.structuredReplies, request.command == .read || request.command == .blockStatus || extended {
                emit(.chunk(cookie: cookie, done: true, payload: .error(errno: errno, message: String(message.utf8.prefix(4096)) ?? "", offset: nil)))
            } else {
                emit(.simple(cookie: cookie, error: errno, data: nil))
            }
        }
        if let errno = check(request, export: export, agreement: agreement) {
            failure(errno, "request refused")
            return out
        }
        do {
            switch request.command {
            case .read?:
                try read(request, device: device, export: export, agreement: agreement, into: &out)
            case .blockStatus?:
                let length = request.length
                var descriptors: [NBDBlockDescriptor] = []
                for extent in try device.extents(at: request.offset, length: length) where descriptors.count < maxDescriptors {
                    let flags: UInt32 = extent.kind == .hole ? NBD.StateFlag.hole | NBD.StateFlag.zero : extent.kind == .zero ? NBD.StateFlag.zero : 0
                    if let last = descriptors.last, last.flags == flags {
                        descriptors[descriptors.count - 1].length += extent.length  // ≤ request.length: u32 unless extended
                    } else {
                        descriptors.append(NBDBlockDescriptor(length: extent.length, flags: flags))
                    }
                }
                if request.flags & NBD.CommandFlag.reqOne != 0 { descriptors = Array(descriptors.prefix(1)) }
                guard !descriptors.isEmpty else { throw DiskError(.io, device.name, operation: "extents", "no extents") }
                emit(.chunk(cookie: cookie, done: true, payload: .blockStatus(context: NBDServerHandshake.baseAllocationID, descriptors: descriptors)))
            case .write?:
                guard var payload else { throw DiskError(.io, device.name, operation: "write", "no payload") }
                try payload.withUnsafeReadableBytes { try device.write($0, at: request.offset) }
                payload.moveReaderIndex(to: payload.writerIndex)
                if request.flags & NBD.CommandFlag.fua != 0 { try device.flush() }
                emit(.simple(cookie: cookie, error: 0, data: nil))
            case .writeZeroes?, .trim?:
                let mayDiscard = request.command == .trim || request.flags & NBD.CommandFlag.noHole == 0
                try device.writeZeros(at: request.offset, length: request.length, mayDiscard: mayDiscard)
                if request.flags & NBD.CommandFlag.fua != 0 { try device.flush() }
                emit(.simple(cookie: cookie, error: 0, data: nil))
            case .flush?:
                try device.flush()
                emit(.simple(cookie: cookie, error: 0, data: nil))
            case .cache?, .disconnect?, nil:
                emit(.simple(cookie: cookie, error: 0, data: nil))
            }
        } catch {
            out.clear()
            failure(errno(for: error), "\(error)")
        }
        return out
    }

    /// A READ's reply, its data read from the disk straight into `out` (no second copy of it).
    private static func read(
        _ request: NBDRequest, device: any BlockDevice, export: NBDExportSpec, agreement: NBDSessionAgreement, into out: inout ByteBuffer
    ) throws {
        let length = Int(request.length)  // ≤ NBD.Limit.payload (checked)
        let extended = agreement.extendedHeaders
        func emit(_ reply: NBDReply) {
            if extended { reply.writeExtended(offset: request.offset, to: &out) } else { reply.write(to: &out) }
        }
        func readData(_ n: Int, at offset: UInt64) throws {
            try out.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { raw in
                try device.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<n]), at: offset)
                return n
            }
        }
        guard agreement.structuredReplies else {
            out.reserveCapacity(minimumWritableBytes: 16 + length)
            NBDReply.simple(cookie: request.cookie, error: 0, data: nil).write(to: &out)
            try readData(length, at: request.offset)
            return
        }
        let extents = (export.extents && length > 0
            ? try device.extents(at: request.offset, length: UInt64(length))
            : [Extent(offset: request.offset, length: UInt64(length), kind: .data)]).filter { $0.length > 0 }
        guard !extents.isEmpty else {
            return emit(.chunk(cookie: request.cookie, done: true, payload: .none))
        }
        let data = extents.reduce(0) { $0 + ($1.kind.readsAsZero ? 0 : Int($1.length)) }
        out.reserveCapacity(minimumWritableBytes: data + 32 * extents.count)
        for (i, extent) in extents.enumerated() {
            let done = i == extents.count - 1
            if extent.kind.readsAsZero {
                emit(.chunk(cookie: request.cookie, done: done, payload: .hole(offset: extent.offset, length: UInt32(extent.length))))
                continue
            }
            let n = Int(extent.length)
            if extended {
                NBDChunkPayload.writeExtendedChunkHeader(
                    cookie: request.cookie, done: done, type: NBD.Chunk.offsetData, offset: request.offset, length: 8 + n, to: &out)
            } else {
                NBDChunkPayload.writeChunkHeader(cookie: request.cookie, done: done, type: NBD.Chunk.offsetData, length: 8 + n, to: &out)
            }
            out.writeInteger(extent.offset, endianness: .big)
            try readData(n, at: extent.offset)
        }
    }

    static func errno(for error: any Error) -> UInt32 {
        guard let disk = error as? DiskError else { return NBD.Errno.eio }
        switch disk.code {
        case .readOnly, .permissionDenied: return NBD.Errno.eperm
        case .noSpace, .tooSmall: return NBD.Errno.enospc
        case .outOfRange: return NBD.Errno.einval
        case .unsupported: return NBD.Errno.enotsup
        default: return NBD.Errno.eio
        }
    }
}
