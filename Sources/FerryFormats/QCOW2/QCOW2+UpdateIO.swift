import FerryBinary
import FerryDisk
import SystemPackage

extension QCOW2 {
    /// Positional I/O on the image file being updated. The file grows as clusters are
    /// appended, but a `FileDevice` keeps the size it had when opened (and bounds-checks
    /// reads against it), so reads go through the descriptor and read zeros past the end,
    /// as qemu does for a cluster that lies partly beyond a short last cluster.
    struct UpdateIO: Sendable {
        let file: FileDevice

        var path: String { file.name }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: HostOffset) throws {
            var done = 0
            while done < buffer.count {
                let n: Int
                do {
                    n = try file.withDescriptor("read") { descriptor in
                        try descriptor.read(
                            fromAbsoluteOffset: Int64(offset.bytes) + Int64(done),
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), retryOnInterrupt: true)
                    }
                } catch let e as Errno {
                    throw DiskError.system(e.rawValue, path, operation: "read", context: "at offset \(offset.bytes + UInt64(done))")
                }
                if n == 0 {
                    UnsafeMutableRawBufferPointer(rebasing: buffer[done...]).initializeMemory(as: UInt8.self, repeating: 0)
                    return
                }
                done += n
            }
        }

        func bytes(at offset: HostOffset, count: Int) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
            return bytes
        }

        func write(_ buffer: UnsafeRawBufferPointer, at offset: HostOffset) throws {
            try file.write(buffer, at: offset.bytes)
        }

        func write(_ bytes: [UInt8], at offset: HostOffset) throws {
            try bytes.withUnsafeBytes { try file.write($0, at: offset.bytes) }
        }

        /// fsync: the barrier between the phases of a metadata update.
        func sync() throws { try file.flush() }

        static func bigEndian(_ words: [UInt64]) -> [UInt8] {
            var w = ByteWriter(capacity: words.count * 8)
            for word in words { w.writeBigEndian(word) }
            return w.bytes
        }

        static func bigEndian(_ words: [UInt16]) -> [UInt8] {
            var w = ByteWriter(capacity: words.count * 2)
            for word in words { w.writeBigEndian(word) }
            return w.bytes
        }

        static func decode16(_ raw: [UInt8]) -> [UInt16] {
            var out = [UInt16](repeating: 0, count: raw.count / 2)
            for i in 0..<out.count { out[i] = UInt16(raw[2 * i]) << 8 | UInt16(raw[2 * i + 1]) }
            return out
        }
    }
}
