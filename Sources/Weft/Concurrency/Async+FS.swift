/// The async twins of the file futures (FS/), by the one rule every async
/// twin follows (docs/ARCHITECTURE.md, "The Swift concurrency bridge"). A
/// file's operations run on the file's own loop: at once when called there,
/// else hopping to it. Path operations run on the calling task's loop (or
/// ``LoopThread/shared``).
///
/// **Cancellation** (every method here): cancelling the task drops the
/// future and throws `CancellationError`. A request a pool thread has not
/// started is cancelled and does nothing; one it has started runs to the end
/// (a write may land, a rename may happen) and its result is dropped. An
/// await whose loop shuts down under it is dropped the same way, but throws
/// ``WeftError/Kind/closed`` (a file's operation) or
/// ``WeftError/Kind/shutDown`` (a path's): nobody cancelled the task.

extension File {
    /// Opens `path` with `options`, creating it with `permissions` where
    /// ``FileOpenOptions/create`` says so. See ``openFuture(_:options:permissions:)``.
    ///
    /// <!-- snippet: compile-only: reads a file the reader's machine may lack -->
    /// ```swift
    /// let file = try await File.open("/etc/hostname")
    /// defer { file.close() }
    /// print(String(decoding: try await file.read(), as: UTF8.self))
    /// ```
    nonisolated(nonsending)
    public static func open(
        _ path: String, options: FileOpenOptions = .read, permissions: FilePermissions = .defaultFile
    ) async throws -> File {
        try await awaitResult(transferring: UnsafeTransfer(value: openFuture(path, options: options, permissions: permissions)), "open \(path)")
    }

    /// The next bytes, at most `maxLength`; empty at end of file. Cancel-safe.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        try await awaitResult(transferring: UnsafeTransfer(value: readFuture(upTo: maxLength)), on: handle.loop, "read \(path)")
    }

    /// At most `maxLength` bytes at `offset` (`pread`); fewer at the end of
    /// the file, and at most 64 MiB at once.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int, at offset: Int64) async throws -> [UInt8] {
        try await awaitResult(transferring: UnsafeTransfer(value: readFuture(upTo: maxLength, at: offset)), on: handle.loop, "read \(path)")
    }

    /// Writes all of `bytes` sequentially and waits until they are written.
    /// Not cancel-safe.
    nonisolated(nonsending)
    public func write(_ bytes: [UInt8]) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: writeFuture(bytes)), on: handle.loop, "write \(path)")
    }

    /// Writes all of `bytes` at `offset` (`pwrite`). Not cancel-safe.
    nonisolated(nonsending)
    public func write(_ bytes: [UInt8], at offset: Int64) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: writeFuture(bytes, at: offset)), on: handle.loop, "write \(path)")
    }

    /// Waits until every byte sequential writes accepted is written, and
    /// reports the error of the last block if it failed.
    nonisolated(nonsending)
    public func flush() async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: Flush(writer: self)), on: handle.loop, "flush \(path)")
    }

    /// The file's status (`fstat`). See ``statusFuture()``.
    nonisolated(nonsending)
    public func status() async throws -> FileStatus {
        try await awaitResult(transferring: UnsafeTransfer(value: statusFuture()), on: handle.loop, "status \(path)")
    }

    /// Waits until the file's data reached the disk (`fsync`). See ``syncFuture()``.
    nonisolated(nonsending)
    public func sync() async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: syncFuture()), on: handle.loop, "sync \(path)")
    }

    /// Cuts or extends the file to `size` bytes. See ``truncateFuture(to:)``.
    nonisolated(nonsending)
    public func truncate(to size: Int64) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: truncateFuture(to: size)), on: handle.loop, "truncate \(path)")
    }

    /// Copies `count` bytes from `offset` to `destination` (at its position),
    /// in the kernel where it can; returns how many. See
    /// ``sendFuture(to:offset:count:)-(File,_,_)``.
    nonisolated(nonsending)
    public func send(to destination: File, offset: Int64 = 0, count: Int) async throws -> Int {
        try await awaitResult(transferring: UnsafeTransfer(value: sendFuture(to: destination, offset: offset, count: count)),
                        on: handle.loop, "sendfile \(path)")
    }
}

extension File {
    /// Sends `count` bytes of this file from `offset` to the TCP `stream`
    /// with `sendfile`; returns how many. See ``sendFuture(to:offset:count:)-(TCPStream,_,_)``.
    nonisolated(nonsending)
    public func send(to stream: TCPStream, offset: Int64 = 0, count: Int) async throws -> Int {
        try await awaitResult(transferring: UnsafeTransfer(value: sendFuture(to: stream, offset: offset, count: count)),
                        on: handle.loop, "sendfile \(path)")
    }

    /// Sends `count` bytes of this file from `offset` to the Unix domain
    /// `stream` with `sendfile`; returns how many. See ``sendFuture(to:offset:count:)-(UnixStream,_,_)``.
    nonisolated(nonsending)
    public func send(to stream: UnixStream, offset: Int64 = 0, count: Int) async throws -> Int {
        try await awaitResult(transferring: UnsafeTransfer(value: sendFuture(to: stream, offset: offset, count: count)),
                        on: handle.loop, "sendfile \(path)")
    }
}

extension FileSystem {
    /// The status of `path`. See ``statusFuture(of:followingLinks:)``.
    nonisolated(nonsending)
    public static func status(of path: String, followingLinks: Bool = true) async throws -> FileStatus {
        try await awaitResult(transferring: UnsafeTransfer(value: statusFuture(of: path, followingLinks: followingLinks)), "\(followingLinks ? "stat" : "lstat") \(path)")
    }

    /// Renames `source` to `destination`. See ``renameFuture(from:to:)``.
    nonisolated(nonsending)
    public static func rename(from source: String, to destination: String) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: renameFuture(from: source, to: destination)), "rename \(source) -> \(destination)")
    }

    /// Removes the file `path`. See ``removeFileFuture(_:)``.
    nonisolated(nonsending)
    public static func removeFile(_ path: String) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: removeFileFuture(path)), "remove \(path)")
    }

    /// Removes the empty directory `path`. See ``removeDirectoryFuture(_:)``.
    nonisolated(nonsending)
    public static func removeDirectory(_ path: String) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: removeDirectoryFuture(path)), "rmdir \(path)")
    }

    /// Makes the directory `path`. See ``makeDirectoryFuture(_:permissions:)``.
    nonisolated(nonsending)
    public static func makeDirectory(_ path: String, permissions: FilePermissions = .defaultDirectory) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: makeDirectoryFuture(path, permissions: permissions)), "mkdir \(path)")
    }

    /// Makes a new, empty directory named `prefix` and six random characters,
    /// and returns its path. See ``makeTemporaryDirectoryFuture(prefix:)``.
    ///
    /// <!-- snippet: compile-only: leaves nothing behind only with the removal below -->
    /// ```swift
    /// let directory = try await FileSystem.makeTemporaryDirectory(prefix: "/tmp/example-")
    /// try await FileSystem.writeFile(directory + "/hello.txt", contents: Array("hello\n".utf8))
    /// print(try await FileSystem.contentsOfDirectory(directory).map(\.name))  // ["hello.txt"]
    /// try await FileSystem.removeFile(directory + "/hello.txt")
    /// try await FileSystem.removeDirectory(directory)
    /// ```
    nonisolated(nonsending)
    public static func makeTemporaryDirectory(prefix: String = "/tmp/weft-") async throws -> String {
        try await awaitResult(transferring: UnsafeTransfer(value: makeTemporaryDirectoryFuture(prefix: prefix)), "mkdtemp \(prefix)")
    }

    /// The entries of the directory `path`, sorted by name. See ``contentsOfDirectoryFuture(_:)``.
    nonisolated(nonsending)
    public static func contentsOfDirectory(_ path: String) async throws -> [DirectoryEntry] {
        try await awaitResult(transferring: UnsafeTransfer(value: contentsOfDirectoryFuture(path)), "scandir \(path)")
    }

    /// Every byte of the file `path`, failing past `limit` bytes. See ``readFileFuture(_:limit:)``.
    nonisolated(nonsending)
    public static func readFile(_ path: String, limit: Int = 64 * 1024 * 1024) async throws -> [UInt8] {
        try await awaitResult(transferring: UnsafeTransfer(value: readFileFuture(path, limit: limit)), "readFile \(path)")
    }

    /// Makes (or empties) the file `path` and writes `contents` into it. See
    /// ``writeFileFuture(_:contents:permissions:)``.
    nonisolated(nonsending)
    public static func writeFile(_ path: String, contents: [UInt8], permissions: FilePermissions = .defaultFile) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: writeFileFuture(path, contents: contents, permissions: permissions)), "writeFile \(path)")
    }
}
