import Synchronization

/// An in-place target (a block device) whose first block is kept in memory until the
/// commit, so a copy that fails — an I/O error, a digest that does not match, Ctrl-C —
/// leaves a device with no boot code and no partition table, which nothing mistakes
/// for a good disk.
///
/// ```
///  device:  [ block 0: zeroed at open, written by release() ][ everything else: written through ]
///  memory:  [ block 0 as the copy wrote it                   ]
/// ```
/// Writes and zeroing that touch block 0 land in memory; reads of block 0 come from
/// memory too, so a verification re-read sees the disk as it will be after the commit.
/// Only `TargetCommit` (through `LocalTarget.commit`) calls `release()`, after every
/// check has passed.
public final class FirstBlockHold: BlockDevice {
    /// What is held: the digest's block size, which covers an MBR, a GPT header and
    /// its first entries, and a boot sector.
    public static let blockSize = 64 << 10

    public let base: any BlockDevice
    private let held: Mutex<[UInt8]>
    private let heldLength: Int

    /// Zeroes block 0 on `base` (and flushes), then holds it.
    public init(_ base: any BlockDevice) throws {
        self.base = base
        heldLength = Int(min(UInt64(Self.blockSize), base.size))
        held = Mutex([UInt8](repeating: 0, count: heldLength))
        if heldLength > 0 {
            try base.writeZeros(at: 0, length: UInt64(heldLength), mayDiscard: false)
            try base.flush()
        }
    }

    public var name: String { base.name }
    public var size: UInt64 { base.size }
    public var logicalSectorSize: Int { base.logicalSectorSize }
    public var capabilities: DiskCapabilities { base.capabilities }

    /// How many bytes of `[offset, offset+count)` fall inside the held block.
    private func heldPart(_ offset: UInt64, _ count: Int) -> Int {
        offset >= UInt64(heldLength) ? 0 : min(count, heldLength - Int(offset))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "read")
        let n = heldPart(offset, buffer.count)
        if n > 0 {
            held.withLock { block in
                block.withUnsafeBytes { source in
                    buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[Int(offset)..<Int(offset) + n]))
                }
            }
        }
        if n < buffer.count {
            try base.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[n...]), at: offset + UInt64(n))
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset, UInt64(buffer.count), operation: "write")
        let n = heldPart(offset, buffer.count)
        if n > 0 {
            held.withLock { block in
                block.withUnsafeMutableBytes { target in
                    UnsafeMutableRawBufferPointer(rebasing: target[Int(offset)..<Int(offset) + n])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                }
            }
        }
        if n < buffer.count {
            try base.write(UnsafeRawBufferPointer(rebasing: buffer[n...]), at: offset + UInt64(n))
        }
    }

    public func writeZeros(at offset: UInt64, length: UInt64, mayDiscard: Bool) throws {
        try checkRange(offset, length, operation: "zero")
        let n = heldPart(offset, Int(min(length, UInt64(heldLength))))
        if n > 0 {
            held.withLock { block in
                for i in Int(offset)..<Int(offset) + n { block[i] = 0 }
            }
        }
        if UInt64(n) < length {
            try base.writeZeros(at: offset + UInt64(n), length: length - UInt64(n), mayDiscard: mayDiscard)
        }
    }

    public func extents(at offset: UInt64, length: UInt64) throws -> [Extent] {
        length == 0 ? [] : [Extent(offset: offset, length: length, kind: .data)]
    }

    public func flush() throws { try base.flush() }
    public func close() throws { try base.close() }

    /// The held block as it will be written.
    public var heldBlock: [UInt8] { held.withLock { $0 } }

    /// Writes the held block to the device and flushes: the last step of a commit.
    /// `readBack` (`--verify`) then reads it from the device again — the one part of the
    /// disk a verification re-read took from memory — and throws if it differs.
    public func release(readBack: Bool = false) throws {
        let block = heldBlock
        guard !block.isEmpty else { return }
        try block.withUnsafeBytes { try base.write($0, at: 0) }
        try base.flush()
        guard readBack else { return }
        if let file = base as? FileDevice { file.dropCache(at: 0, length: UInt64(block.count)) }
        guard try base.readBytes(at: 0, count: block.count) == block else {
            throw DiskError(
                .io, base.name, operation: "verify",
                "block 0 (the first \(block.count) bytes, written last) reads back different from what was written")
        }
    }
}
