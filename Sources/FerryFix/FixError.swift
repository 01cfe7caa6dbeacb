/// Why `ferry fix` will not change a disk: nothing has been written when it is thrown.
public struct FixError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// No Windows installation, or no SYSTEM hive, on the disk.
        case noWindows
        /// The guest's state makes writing unsafe: a dirty or hibernated volume, a dirty hive,
        /// an unknown control set, a step that cannot be done (a driver file missing).
        case refused
        /// The disk or image kind cannot be written in place.
        case unsupported
        /// An undo file that does not belong to this disk, or is damaged.
        case badUndo
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
