import CLibUV

/// What kind of file a path names.
public enum FileKind: Sendable, Hashable {
    case regular
    case directory
    case symbolicLink
    case fifo
    case socket
    case characterDevice
    case blockDevice
    /// Not known: a directory entry whose type the file system does not report.
    case unknown

    init(mode: UInt64) {
        self = switch UInt32(truncatingIfNeeded: mode) & UInt32(S_IFMT) {
        case UInt32(S_IFREG): .regular
        case UInt32(S_IFDIR): .directory
        case UInt32(S_IFLNK): .symbolicLink
        case UInt32(S_IFIFO): .fifo
        case UInt32(S_IFSOCK): .socket
        case UInt32(S_IFCHR): .characterDevice
        case UInt32(S_IFBLK): .blockDevice
        default: .unknown
        }
    }

    init(direntType: uv_dirent_type_t) {
        self = switch direntType {
        case UV_DIRENT_FILE: .regular
        case UV_DIRENT_DIR: .directory
        case UV_DIRENT_LINK: .symbolicLink
        case UV_DIRENT_FIFO: .fifo
        case UV_DIRENT_SOCKET: .socket
        case UV_DIRENT_CHAR: .characterDevice
        case UV_DIRENT_BLOCK: .blockDevice
        default: .unknown
        }
    }
}

/// What `stat(2)` says of a file: see ``FileSystem/status(of:followingLinks:)`` and ``File/status()``.
public struct FileStatus: Sendable, Hashable {
    /// The size in bytes.
    public let size: Int64
    public let kind: FileKind
    public let permissions: FilePermissions
    /// The last modification, since the Unix epoch.
    public let modificationTime: Duration
    /// The device and inode: together they name the file.
    public let device: UInt64
    public let inode: UInt64
    /// How many hard links name it.
    public let linkCount: UInt64

    init(_ status: uv_stat_t) {
        size = Int64(bitPattern: status.st_size)
        kind = FileKind(mode: status.st_mode)
        permissions = FilePermissions(rawValue: UInt32(truncatingIfNeeded: status.st_mode) & 0o7777)
        modificationTime = .seconds(status.st_mtim.tv_sec) + .nanoseconds(status.st_mtim.tv_nsec)
        device = status.st_dev
        inode = status.st_ino
        linkCount = status.st_nlink
    }
}

/// One entry of a directory: see ``FileSystem/contentsOfDirectory(_:)``.
public struct DirectoryEntry: Sendable, Hashable {
    /// The entry's name within its directory (never `.` or `..`). A name whose
    /// bytes are not UTF-8 is read with U+FFFD for each invalid sequence, so
    /// it does not name the entry (nor, always, only it): Weft's paths are
    /// Swift strings.
    public let name: String
    /// Its kind, as the directory reports it (``FileKind/unknown`` on file
    /// systems that do not say; ask ``FileSystem/status(of:followingLinks:)`` then).
    public let kind: FileKind

    /// An entry named `name` of `kind` (to compare a listing with).
    public init(name: String, kind: FileKind) {
        self.name = name
        self.kind = kind
    }
}
