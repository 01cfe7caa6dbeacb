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
}
