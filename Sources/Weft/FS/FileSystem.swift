import CLibUV

/// Operations on paths, each one request on libuv's thread pool (Tokio's
/// `tokio::fs`): status, rename, remove, make a directory or a temporary one,
/// list a directory, read or write a whole file, and watch for changes.
///
/// Each has a poll form ending in `Future` and an async form with the plain
/// name (``rename(from:to:)``). Errors name the operation and the path:
/// `remove /tmp/x: ENOENT (no such file or directory)`.
///
/// **Cancellation:** see ``FileOperation``: a request not started is
/// cancelled; one started happens all the same, and its result is dropped.
public enum FileSystem {
    /// A future of the status of `path` (`stat`, or `lstat` with
    /// `followingLinks: false`). The async form is ``status(of:followingLinks:)``.
    public static func statusFuture(of path: String, followingLinks: Bool = true) -> FileOperation<FileStatus> {
        FileOperation(operation: followingLinks ? "stat" : "lstat", capture: .status, file: nil, paths: [path], submit: { loop, request, done in
            followingLinks ? uv_fs_stat(loop, request, path, done) : uv_fs_lstat(loop, request, path, done)
        }, finish: { FileStatus($0.fileStatus!) })
    }

    /// A future that renames `source` to `destination`, replacing a file
    /// there (`rename`). The async form is ``rename(from:to:)``.
    public static func renameFuture(from source: String, to destination: String) -> FileOperation<Void> {
        FileOperation(operation: "rename", file: nil, paths: [source, destination], submit: { loop, request, done in
            uv_fs_rename(loop, request, source, destination, done)
        }, finish: { _ in })
    }

    /// A future that removes the file (or symbolic link) `path` (`unlink`).
    /// The async form is ``removeFile(_:)``.
    public static func removeFileFuture(_ path: String) -> FileOperation<Void> {
        FileOperation(operation: "remove", file: nil, paths: [path], submit: { loop, request, done in
            uv_fs_unlink(loop, request, path, done)
        }, finish: { _ in })
    }

    /// A future that removes the empty directory `path` (`rmdir`). The async
    /// form is ``removeDirectory(_:)``.
    public static func removeDirectoryFuture(_ path: String) -> FileOperation<Void> {
        FileOperation(operation: "rmdir", file: nil, paths: [path], submit: { loop, request, done in
            uv_fs_rmdir(loop, request, path, done)
        }, finish: { _ in })
    }

    /// A future that makes the directory `path` (`mkdir`; its parent must
    /// exist). The async form is ``makeDirectory(_:permissions:)``.
    public static func makeDirectoryFuture(
        _ path: String, permissions: FilePermissions = .defaultDirectory
    ) -> FileOperation<Void> {
        let mode = Int32(bitPattern: permissions.rawValue)
        return FileOperation(operation: "mkdir", file: nil, paths: [path], submit: { loop, request, done in
            uv_fs_mkdir(loop, request, path, mode, done)
        }, finish: { _ in })
    }

    /// A future of a new, empty directory whose path is `prefix` followed by
    /// six random characters (`mkdtemp`), readable only by its owner. The
    /// async form is ``makeTemporaryDirectory(prefix:)``.
    public static func makeTemporaryDirectoryFuture(prefix: String = "/tmp/weft-") -> FileOperation<String> {
        FileOperation(operation: "mkdtemp", capture: .createdPath, file: nil, paths: [prefix], submit: { loop, request, done in
            uv_fs_mkdtemp(loop, request, prefix + "XXXXXX", done)
        }, finish: { $0.createdPath ?? "" })
    }

    /// A future of the entries of the directory `path`, sorted by name,
    /// without `.` and `..` (`scandir`). The async form is ``contentsOfDirectory(_:)``.
    public static func contentsOfDirectoryFuture(_ path: String) -> FileOperation<[DirectoryEntry]> {
        FileOperation(operation: "scandir", capture: .entries, file: nil, paths: [path], submit: { loop, request, done in
            uv_fs_scandir(loop, request, path, 0, done)
        }, finish: { request in
            request.entries.map { DirectoryEntry(name: $0.name, kind: FileKind(direntType: $0.type)) }
        })
    }

    /// A future of every byte of the file `path`, failing with
    /// `.invalidArgument` past `limit` bytes (so a huge or endless file, such
    /// as `/dev/zero`, cannot exhaust memory). The async form is ``readFile(_:limit:)``.
    public static func readFileFuture(_ path: String, limit: Int = 64 * 1024 * 1024) -> ReadWholeFile {
        ReadWholeFile(path: path, limit: limit, stage: .opening(File.openFuture(path)))
    }

    /// A future that makes (or empties) the file `path` and writes `contents`
    /// into it, then closes it. It does not `fsync`. The async form is
    /// ``writeFile(_:contents:permissions:)``.
    public static func writeFileFuture(
        _ path: String, contents: [UInt8], permissions: FilePermissions = .defaultFile
    ) -> WriteWholeFile {
        WriteWholeFile(contents: contents, stage: .opening(File.openFuture(
            path, options: [.write, .create, .truncate], permissions: permissions)))
    }
}

/// Reads a whole file. See ``FileSystem/readFileFuture(_:limit:)``.
///
/// **Cancellation:** dropping it closes the file; nothing is lost but the read.
public struct ReadWholeFile: Future {
    enum Stage {
        case opening(FileOpen)
        case reading(File)
        case done
    }

    let path: String
    let limit: Int
    var stage: Stage
    var bytes: [UInt8] = []

    public mutating func poll(_ context: inout Context) -> Poll<Result<[UInt8], WeftError>> {
        while true {
            switch stage {
            case .done:
                return .ready(.failure(.polledAgain("readFile \(path)")))
            case .opening(var open):
                let result = open.poll(&context)
                stage = .opening(open)
                guard case .ready(let opened) = result else { return .pending }
                switch opened {
                case .failure(let error):
                    stage = .done
                    return .ready(.failure(error))
                case .success(let file):
                    stage = .reading(file)
                }
            case .reading(let file):
                switch file.pollFillBuffer(&context) {
                case .pending:
                    return .pending
                case .ready(.failure(let error)):
                    stage = .done
                    file.close()
                    return .ready(.failure(error))
                case .ready(.success(let chunk)):
                    if chunk.isEmpty {
                        stage = .done
                        file.close()
                        return .ready(.success(bytes))
                    }
                    if bytes.count + chunk.count > limit {
                        stage = .done
                        file.close()
                        return .ready(.failure(WeftError(.invalidArgument, operation: "readFile \(path)",
                                                         detail: "more than the limit of \(limit) bytes")))
                    }
                    bytes.append(contentsOf: chunk)
                    file.consume(chunk.count)
                }
            }
        }
    }
}

/// Writes a whole file. See ``FileSystem/writeFileFuture(_:contents:permissions:)``.
///
/// **Cancellation:** not cancel-safe: the file may be left empty or with a
/// prefix of the contents.
public struct WriteWholeFile: Future {
    enum Stage {
        case opening(FileOpen)
        case writing(File, WriteAll<File>)
        case done
    }

    let contents: [UInt8]
    var stage: Stage

    public mutating func poll(_ context: inout Context) -> Poll<Result<Void, WeftError>> {
        while true {
            switch stage {
            case .done:
                return .ready(.failure(.polledAgain("writeFile")))
            case .opening(var open):
                let result = open.poll(&context)
                stage = .opening(open)
                guard case .ready(let opened) = result else { return .pending }
                switch opened {
                case .failure(let error):
                    stage = .done
                    return .ready(.failure(error))
                case .success(let file):
                    stage = .writing(file, file.writeAll(contents))
                }
            case .writing(let file, var write):
                let result = write.poll(&context)
                stage = .writing(file, write)
                guard case .ready(let written) = result else { return .pending }
                stage = .done
                file.close()
                return .ready(written)
            }
        }
    }
}
