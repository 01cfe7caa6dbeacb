import FerryBinary

/// What $LogFile's first restart page says about the last dismount (Linux fs/ntfs logfile.h).
public enum JournalState: String, Sendable, Codable {
    /// Never used or emptied (all 0xFF, as mkntfs and ntfsfix leave it).
    case empty
    /// Closed (no client in use, Windows 2000 style) or open with RESTART_VOLUME_IS_CLEAN (XP and later).
    case clean
    /// Open without the clean flag: Windows did not dismount (crash, power-off, crash-consistent snapshot).
    case unclean
    /// The restart page could not be read or is not a restart page.
    case unknown
}

extension NTFSVolume {
    /// Reads $LogFile (record 2) restart page 1.
    ///
    /// ```
    /// restart page:  0 "RSTR"/"CHKD"  4 USA offset  6 USA count  8 chkdsk LSN  16 system page size
    ///                20 log page size  24 restart area offset u16  26 minor  28 major
    /// restart area:  0 current LSN  8 log clients  10 client free list  12 client in-use list u16
    ///                14 flags u16 (0x0002 RESTART_VOLUME_IS_CLEAN)
    /// ```
    public func journalState() -> JournalState {
        guard let record = try? record(2), let stream = try? stream(of: record, type: .data), stream.size >= 4096,
            var page = try? stream.read(at: 0, count: 4096)
        else { return .unknown }
        if page.allSatisfy({ $0 == 0xFF }) { return .empty }
        guard page.starts(with: Array("RSTR".utf8)) || page.starts(with: Array("CHKD".utf8)),
            let pageSize = page.littleEndian(UInt32.self, at: 16), pageSize >= 512, pageSize <= 4096, pageSize & (pageSize - 1) == 0
        else { return .unknown }
        page = Array(page.prefix(Int(pageSize)))
        guard (try? FixUp.apply(&page, structure: "$LogFile restart page", offset: 0)) != nil,
            let areaOffset = page.littleEndian(UInt16.self, at: 24).map(Int.init),
            let inUse = page.littleEndian(UInt16.self, at: areaOffset + 12),
            let flags = page.littleEndian(UInt16.self, at: areaOffset + 14)
        else { return .unknown }
        return inUse == 0xFFFF || flags & 0x0002 != 0 ? .clean : .unclean
    }
}
