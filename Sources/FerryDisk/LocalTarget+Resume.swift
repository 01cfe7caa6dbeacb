#if canImport(Glibc)
import Glibc
#endif

extension LocalTarget {
    /// Reopens the partial file an interrupted transfer left for `path` (see
    /// `partialName(for:)`), keeping its contents, so a resumed transfer can continue
    /// into it. Nil when there is none or its size is not `size`; the caller then
    /// starts afresh with `open`. Only the network receiver uses this, and only when
    /// its resume journal vouches for what the partial file holds.
    public static func reopenPartial(_ path: String, size: UInt64) throws -> LocalTarget? {
        let partial = partialName(for: path)
        var st = stat()
        guard stat(partial, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, UInt64(st.st_size) == size else { return nil }
        let device = try FileDevice.openForWriting(partial)
        return LocalTarget(path: path, device: device, knownZero: false, writesInPlace: false, partialPath: partial)
    }

    /// Reopens the committed file `path` of an earlier run of the same session, to be
    /// written in place (there is no partial name left to rename). Nil when it is not
    /// a regular file of `size` bytes. Only the network receiver uses this, when its
    /// journal records the commit and vouches for every segment.
    public static func reopenCommitted(_ path: String, size: UInt64) throws -> LocalTarget? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, UInt64(st.st_size) == size else { return nil }
        let device = try FileDevice.openForWriting(path)
        return LocalTarget(path: path, device: device, knownZero: false, writesInPlace: false, partialPath: nil)
    }
}
