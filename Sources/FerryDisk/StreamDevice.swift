import Synchronization
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A pipe or terminal: standard input as a source or standard output as a target.
///
/// Streams have no random access: the copy engine must read or write offsets in
/// order, and zeros are real bytes on the wire (a pipe cannot seek over them).
public final class StreamDevice: BlockDevice {
    public let name: String
    public let size: UInt64
    public var logicalSectorSize: Int { 512 }
    public let capabilities: DiskCapabilities
    private let descriptor: FileDescriptor
    /// A connected socket: written with `send(MSG_NOSIGNAL)`, so a peer that hangs up is
    /// an EPIPE error to report, not a SIGPIPE that kills the process without a word.
    private let isSocket: Bool
    /// Next expected offset; streams are strictly sequential.
    private let position = Mutex<UInt64>(0)

    /// Standard input as a source of `size` bytes.
    public static func standardInput(size: UInt64) -> StreamDevice {
        StreamDevice(name: "stdin", descriptor: .standardInput, size: size, writable: false)
    }

    /// Standard output as a target of `size` bytes.
    public static func standardOutput(size: UInt64) -> StreamDevice {
        StreamDevice(name: "stdout", descriptor: .standardOutput, size: size, writable: true)
    }

    public init(name: String, descriptor: FileDescriptor, size: UInt64, writable: Bool, socket: Bool = false) {
        self.name = name
        self.descriptor = descriptor
        isSocket = socket
        self.size = size
        capabilities = writable ? [.writable] : []
    }

    private func advance(from offset: UInt64, by count: Int, operation: String) throws {
        try position.withLock { position in
            guard offset == position else {
                throw DiskError(
                    .unsupported, name, operation: operation,
                    "a stream only goes forward: expected offset \(position), got \(offset)")
            }
            position += UInt64(count)
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        try advance(from: offset, by: buffer.count, operation: "read")
        var done = 0
        while done < buffer.count {
            try waitUntilReady(for: Int16(POLLIN), operation: "read")
            let n: Int
            do {
                n = try descriptor.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), retryOnInterrupt: true)
            } catch let e as Errno {
                throw DiskError.system(e.rawValue, name, operation: "read")
            }
            if n == 0 {
                throw DiskError(
                    .io, name, operation: "read",
                    "the stream ended after \(offset + UInt64(done)) of the \(size) bytes expected")
            }
            done += n
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard capabilities.contains(.writable) else {
            throw DiskError(.readOnly, name, operation: "write", "standard input is not writable")
        }
        try advance(from: offset, by: buffer.count, operation: "write")
        var done = 0
        while done < buffer.count {
            try waitUntilReady(for: Int16(POLLOUT), operation: "write")
            let rest = UnsafeRawBufferPointer(rebasing: buffer[done...])
            if isSocket {
                let n = send(descriptor.rawValue, rest.baseAddress, rest.count, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw DiskError.system(errno, name, operation: "write")
                }
                done += n
                continue
            }
            do {
                done += try descriptor.write(rest, retryOnInterrupt: true)
            } catch let e as Errno {
                throw DiskError.system(e.rawValue, name, operation: "write")
            }
        }
    }

    /// Waits for the pipe in quarter-second slices, giving up when the copy is interrupted.
    private func waitUntilReady(for events: Int16, operation: String) throws {
        var entry = pollfd(fd: descriptor.rawValue, events: events, revents: 0)
        while true {
            if Cancellation.interrupt.isCancelled {
                throw DiskError(.cancelled, name, operation: operation, "interrupted")
            }
            let r = poll(&entry, 1, 250)
            if r > 0 { return }  // ready, or an error/hang-up the read or write will report
            if r < 0 && errno != EINTR { throw DiskError.system(errno, name, operation: operation, context: "poll") }
        }
    }

    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try writeZeroBytes(self, at: offset, length: length)
    }
}

/// Discards everything written: `null:` as a target, for benchmarks and checksums.
public final class NullDevice: BlockDevice {
    public let size: UInt64
    public var name: String { "null:" }
    public var logicalSectorSize: Int { 512 }
    public var capabilities: DiskCapabilities { [.randomAccess, .writable] }

    public init(size: UInt64) { self.size = size }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {}
    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {}
    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        length == 0 ? [] : [Extent(offset: offset, length: length, kind: .hole)]
    }
}
