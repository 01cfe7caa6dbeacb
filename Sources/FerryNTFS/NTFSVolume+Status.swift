import FerryBinary

/// What hiberfil.sys says about the last shutdown (ntfs-3g's test: `hibr`/`HIBR` at byte 0
/// means Windows hibernated, or Windows 8+ Fast Startup left the volume in use).
public enum HibernationState: String, Sendable, Codable {
    case noHiberfile
    /// The file exists and is not a live image (`wake`, zeros, or too short).
    case clean
    case hibernated
}

extension NTFSVolume {
    /// $VOLUME_INFORMATION (record 3, attribute 0x70): version at 8/9, flags u16 at 10.
    public struct VolumeInformation: Sendable, Equatable {
        public var majorVersion: UInt8
        public var minorVersion: UInt8
        public var flags: UInt16
        /// Flag 0x0001: chkdsk will run on the next boot; the last unmount was not clean.
        public var isDirty: Bool { flags & 0x0001 != 0 }
    }

    public func volumeInformation() throws -> VolumeInformation {
        let record = try record(3)
        guard let value = record.attributes(.volumeInformation).first?.residentValue, value.count >= 12 else {
            throw FormatError(.inconsistent, structure: "MFT record 3 ($Volume)", "no resident $VOLUME_INFORMATION")
        }
        return VolumeInformation(majorVersion: value[8], minorVersion: value[9], flags: value.littleEndian(UInt16.self, at: 10) ?? 0)
    }

    /// The volume label ($VOLUME_NAME in record 3), if any.
    public func label() throws -> String? {
        guard let value = try record(3).attributes(.volumeName).first?.residentValue, !value.isEmpty else { return nil }
        return NTFSName.decode(value)
    }

    /// Looks at /hiberfil.sys's first four bytes.
    public func hibernationState() throws -> HibernationState {
        guard let stream = try open("/hiberfil.sys") else { return .noHiberfile }
        guard stream.size >= 4 else { return .clean }
        let magic = try stream.read(at: 0, count: 4)
        return magic == Array("hibr".utf8) || magic == Array("HIBR".utf8) ? .hibernated : .clean
    }
}

extension NTFSVolume {
    /// The file's long name from its $FILE_NAME attributes (Win32 or POSIX, not the DOS 8.3 one).
    ///
    /// $FILE_NAME value: 64 name length (characters) u8, 65 namespace u8 (0 POSIX, 1 Win32,
    /// 2 DOS, 3 Win32+DOS), 66 name (UTF-16LE).
    public func longName(of record: MFTRecord) -> String? {
        var best: String?
        for attribute in record.attributes(.fileName) {
            guard let value = attribute.residentValue, value.count >= 66 else { continue }
            let length = Int(value[64]), namespace = value[65]
            guard 66 + 2 * length <= value.count else { continue }
            let name = NTFSName.decode(Array(value[66..<66 + 2 * length]))
            if namespace != 2 { return name }
            best = best ?? name
        }
        return best
    }
}
