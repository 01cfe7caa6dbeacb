/// Appends integers with explicit endianness; the writing half of `ByteReader`.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(bytes more: some Sequence<UInt8>) { bytes.append(contentsOf: more) }
    public mutating func writeZeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    public mutating func writeLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    public mutating func writeBigEndian<T: FixedWidthInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        for i in (0..<size).reversed() { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    /// Overwrites a little-endian value already written at `offset`.
    public mutating func setLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    /// Overwrites a big-endian value already written at `offset`.
    public mutating func setBigEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let size = MemoryLayout<T>.size
        for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - i))) }
    }
}
