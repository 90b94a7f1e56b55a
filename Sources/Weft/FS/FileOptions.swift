import CLibUV

/// How ``File/openFuture(_:options:permissions:)`` opens a file: the access
/// wanted and what to do when the file exists or not (`open(2)`'s flags).
///
/// `[.read]` opens an existing file for reading; `[.write, .create, .truncate]`
/// makes or empties one for writing, as `>` in a shell; add `.append` to write
/// at its end instead. Every descriptor is opened close-on-exec.
public struct FileOpenOptions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Open for reading.
    public static let read = FileOpenOptions(rawValue: 1 << 0)
    /// Open for writing (with ``read``: for both).
    public static let write = FileOpenOptions(rawValue: 1 << 1)
    /// Create the file if it does not exist (`O_CREAT`), with the permissions given.
    public static let create = FileOpenOptions(rawValue: 1 << 2)
    /// Empty an existing file (`O_TRUNC`); needs ``write`` (an open without
    /// it fails with ``WeftError/Kind-swift.enum/invalidArgument``).
    public static let truncate = FileOpenOptions(rawValue: 1 << 3)
    /// Every write goes to the end of the file (`O_APPEND`); a write at an
    /// offset fails with ``WeftError/Kind-swift.enum/invalidArgument`` (Linux
    /// would write it at the end).
    public static let append = FileOpenOptions(rawValue: 1 << 4)
    /// With ``create``: fail with ``WeftError/Code/alreadyExists`` if the file exists (`O_EXCL`).
    public static let exclusive = FileOpenOptions(rawValue: 1 << 5)

    /// Why these options cannot go together, if they cannot: ``truncate``
    /// without ``write`` (or ``append``), which Linux would still honour,
    /// emptying a file opened only to be read; ``exclusive`` without
    /// ``create``, which Linux ignores (an existing file was opened).
    var conflict: String? {
        if contains(.truncate) && !contains(.write) && !contains(.append) { return "truncate needs write access" }
        if contains(.exclusive) && !contains(.create) { return "exclusive needs create" }
        return nil
    }

    /// The `open(2)` flags these options mean.
    var flags: Int32 {
        var flags: Int32 = switch (contains(.read), contains(.write) || contains(.append)) {
        case (true, true): O_RDWR
        case (false, true): O_WRONLY
        default: O_RDONLY
        }
        flags |= O_CLOEXEC
        if contains(.create) { flags |= O_CREAT }
        if contains(.truncate) { flags |= O_TRUNC }
        if contains(.append) { flags |= O_APPEND }
        if contains(.exclusive) { flags |= O_EXCL }
        return flags
    }
}

/// The permission bits of a file or directory (`chmod`'s mode), e.g.
/// `FilePermissions(rawValue: 0o640)` or `[.ownerRead, .ownerWrite]`. The
/// process's umask still applies where a file or directory is created.
public struct FilePermissions: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public static let ownerRead = FilePermissions(rawValue: 0o400)
    public static let ownerWrite = FilePermissions(rawValue: 0o200)
    public static let ownerExecute = FilePermissions(rawValue: 0o100)
    public static let groupRead = FilePermissions(rawValue: 0o040)
    public static let groupWrite = FilePermissions(rawValue: 0o020)
    public static let groupExecute = FilePermissions(rawValue: 0o010)
    public static let otherRead = FilePermissions(rawValue: 0o004)
    public static let otherWrite = FilePermissions(rawValue: 0o002)
    public static let otherExecute = FilePermissions(rawValue: 0o001)

    /// `0o644`: what a new file gets by default (read for all, write for its owner).
    public static let defaultFile = FilePermissions(rawValue: 0o644)
    /// `0o755`: what a new directory gets by default.
    public static let defaultDirectory = FilePermissions(rawValue: 0o755)

    /// The bits in octal, as `ls` users read them: `0o644`.
    public var description: String {
        "0o" + String(rawValue, radix: 8)
    }
}
