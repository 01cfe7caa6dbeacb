extension Array where Element == UInt8 {
    /// The bytes as UTF-16LE code units (a trailing odd byte is ignored), as NTFS names and
    /// registry strings store them.
    public var utf16LittleEndianUnits: [UInt16] {
        var units: [UInt16] = []
        units.reserveCapacity(count / 2)
        var i = 0
        while i + 1 < count {
            units.append(UInt16(self[i]) | UInt16(self[i + 1]) << 8)
            i += 2
        }
        return units
    }
}
