import CLibUV

/// One change a watch reported: see ``FileSystem/watch(_:)``.
public struct FileChange: Sendable, Hashable {
    /// What happened, as inotify reports it through libuv: a name appeared,
    /// went or was renamed (``renamed``), or contents or metadata changed
    /// (``changed``).
    public struct Kinds: OptionSet, Sendable, Hashable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        /// `UV_RENAME`: an entry was created, removed or renamed (or the watched file itself was).
        public static let renamed = Kinds(rawValue: Int32(UV_RENAME.rawValue))
        /// `UV_CHANGE`: contents or metadata changed (a write, an append, a `chmod`).
        public static let changed = Kinds(rawValue: Int32(UV_CHANGE.rawValue))
    }

    /// The name of the entry that changed: within a watched directory, the
    /// entry's name; for the watched file or directory itself, its own name
    /// (what follows the path's last "/": empty for a path ending in one; when
    /// the loop watched the same file or directory first under another path,
    /// libuv names it after that first path's last component). Not
    /// UTF-8, it is read with U+FFFD for each invalid sequence (see
    /// ``DirectoryEntry/name``).
    public let name: String?
    public let kinds: Kinds
}

/// Changes to a file or a directory, as a stream (over a libuv
/// `uv_fs_event_t`, inotify underneath). See ``FileSystem/watch(_:)``; as an
/// `AsyncSequence`: `for try await change in FileSystem.watch(path).values`.
///
/// The watch starts at the first poll, or earlier with ``install(runtime:)``
/// (so that a change made right after is seen). A directory is watched one
/// level deep (changes to its entries, not inside its subdirectories). The
/// kernel coalesces and may drop events, and Weft queues at most 4096
/// unread ones: treat a change as a cue to look, not as a log. The change
/// that ends the stream (below) is never dropped by Weft: the oldest is, for
/// it. The kernel's own queue (`fs.inotify.max_queued_events`, shared by the
/// loop's watches) drops what overflows it, that change too, unreported by
/// libuv: a watch whose events go unread past it may never end.
///
/// Yields a failure (and ends) if the watch cannot be installed, e.g.
/// `watch /tmp/missing: ENOENT (no such file or directory)`.
///
/// Ends after the ``FileChange/Kinds-swift.struct/renamed`` change of the
/// watched file or directory itself (named with its own name): removed,
/// renamed away, or replaced (an editor's save by rename). inotify watches
/// the file, not the name: the kernel drops the watch of a removed file, and
/// the stream would otherwise wait for ever. Whether `path` names the same
/// file afterwards says nothing (one removed and made again usually has the
/// old inode number, unwatched), so the stream ends even when the file was
/// renamed away and back, or when an entry of a watched directory has the
/// directory's own name (libuv names both changes alike). Watch the path
/// again to follow what it names now. A file removed while something still
/// holds it open (a writer, even this process's), or still named by another
/// link, is not gone yet: the removal is a ``FileChange/Kinds-swift.struct/changed``
/// (its link count), its writes go on being seen, and the stream ends only
/// when the last of them lets go.
///
/// The stream belongs to the loop it was installed on: polled on another
/// thread it yields `.wrongThread`, and its ``values`` await each change on
/// that loop. When that loop shuts down, the watch is stopped, and the
/// stream, wherever it is polled, yields a `.shutDown` failure (changes still
/// unread are dropped) and ends; awaited through ``values``, whose elements
/// are those results, the await ends first, with `CancellationError`, as an
/// await whose only failure is cancellation does on a loop that shut down.
///
/// Copies of the stream made once it is installed (at its first poll, or
/// ``install(runtime:)``) share one watch: each change goes to the copy
/// that polls first, and once one copy took the change that ends the watch,
/// the watch is closed and every copy ends. Copies made before each install
/// a watch of their own, and each sees every change.
///
/// **Cancellation:** dropping the stream (its last copy) stops the watch: the
/// handle is closed on its loop, whichever thread drops it.
public struct FileChanges: PollStream {
    let path: String
    var watcher: ClosingOnLoop<FileWatcher>?
    var ended = false

    /// Starts watching now instead of at the first poll. Uses `runtime`, or
    /// the runtime running the calling thread; fails with `.wrongThread` for
    /// a runtime of another thread, with the libuv error for a path that
    /// cannot be watched.
    public mutating func install(runtime: Runtime? = nil) throws(WeftError) {
        guard watcher == nil else { return }
        if let error = nulInPath(path, operation: "watch") { throw error }
        guard let loop = runtime?.loop ?? EventLoop.current else {
            throw WeftError(.invalidArgument, operation: "watch \(path)",
                            detail: "no runtime: pass one, or install from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: "watch \(path)") { throw error }
        watcher = ClosingOnLoop(try FileWatcher(loop: loop, path: path))
    }

    public mutating func pollNext(_ context: inout Context) -> Poll<Result<FileChange, WeftError>?> {
        if ended { return .ready(nil) }
        if watcher == nil {
            do throws(WeftError) {
                // As every future that needs a loop: not `install`'s advice
                // to pass a runtime, which a poll cannot.
                if EventLoop.withCurrent({ $0 == nil }) { throw WeftError.outsideRuntime("watch \(path)") }
                try install()
            } catch {
                ended = true
                return .ready(.failure(error))
            }
        }
        let owner = watcher!.owner
        if owner.hasEndedWithItsLoop {
            ended = true
            watcher = nil
            return .ready(.failure(WeftError(.shutDown, operation: "watch \(path)", detail: "its loop shut down, which stopped the watch")))
        }
        if let error = owner.loop.wrongThread("watch \(path)") { return .ready(.failure(error)) }
        return owner.pollEvent(&context).map { taken in
            guard let event = taken else {
                // Another copy of the stream took the last change.
                ended = true
                watcher = nil
                return nil
            }
            if event.status < 0 {
                ended = true
                watcher = nil
                return .failure(WeftError(uvCode: event.status, operation: "watch \(path)"))
            }
            if owner.endsWatch(event) {
                // This change is the last: the next poll ends the stream.
                ended = true
                watcher = nil
            }
            return .success(FileChange(name: event.name, kinds: FileChange.Kinds(rawValue: FileWatcher.kinds(event.events))))
        }
    }
}

extension FileSystem {
    /// The changes to the file or directory `path`, as a stream; see ``FileChanges``.
    public static func watch(_ path: String) -> FileChanges {
        FileChanges(path: path)
    }
}
