import CLibUV
import CWeftSupport
import Synchronization

/// The owner of a `uv_fs_event_t` watching one path (inotify underneath):
/// allocated apart, `data` unretained, freed in the close callback, closed on
/// its loop's thread when the last copy of its stream goes (``ClosingOnLoop``),
/// or when the loop shuts down first (``OpenWatches``): then the watch ends,
/// since no loop would report a change again. An active watch keeps the loop
/// alive, so waiting for a change is never reported as stuck.
final class FileWatcher: EndsWithItsLoop {
    /// One event as libuv reports it: the name of the entry that changed (in
    /// a watched directory; the file's own name for a file), `UV_RENAME` and
    /// `UV_CHANGE` bits, or a failure.
    struct Event {
        let name: String?
        let events: Int32
        let status: Int32
    }

    /// Events queued at most; past it new ones are dropped (a reader that
    /// stopped reading must not make the loop hold memory without bound) and
    /// counted in ``droppedEvents``, except one that ends the watch
    /// (``endsWatch(_:)``), for which the oldest is dropped instead: the
    /// stream would wait for ever without it.
    static let queueLimit = 4096

    /// Nil once closed.
    private var handle: UnsafeMutablePointer<uv_fs_event_t>?
    /// Kept alive while the handle is open (as every handle owner does).
    let loop: EventLoop
    /// A ring: the events taken leave it at once (an array emptied only when
    /// drained kept every event a slow reader had taken, growing for ever).
    private let queue = RingBuffer<Event>(capacity: 16)
    /// Set when one copy of the stream took the watch's last event.
    private var hasEnded = false
    /// Events dropped because the queue was full.
    private(set) var droppedEvents = 0
    private var waiting = WaitingWakers()
    /// Set when the loop shut down with the handle open; read wherever the
    /// stream is polled (a thread other than the loop's, once it is gone).
    private let loopShutDown = Atomic<Bool>(false)
    /// The name libuv gives the watched path's own events (``ownName(of:)``)
    /// of the path libuv watches: a loop's second watch of one file or
    /// directory shares the first's, and its events carry that one's name
    /// (`dir/` beside `dir`, a link beside its target). Named after the
    /// path given, such a watch never saw its own end, and waited for ever.
    private(set) var ownName: String

    init(loop: EventLoop, path: String) throws(WeftError) {
        self.loop = loop
        ownName = Self.ownName(of: path)
        var error: Int32 = 0
        guard let handle = weft_fs_event_new(loop.uvLoop, &error) else {
            throw WeftError(uvCode: error, operation: "watch \(path)")
        }
        self.handle = handle
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let result = uv_fs_event_start(handle, { handle, name, events, status in
            guard let watcher = handleOwner(handle, as: FileWatcher.self) else { return }
            watcher.deliver(Event(name: name.map { String(cString: $0) }, events: events, status: status))
        }, path, 0)
        if result < 0 {
            // Every stored property is set: throwing runs `deinit`, which
            // closes the handle (on this thread, the loop's).
            throw WeftError(.libuv(code: result), operation: "watch \(path)", detail: Self.limitDetail(result))
        }
        if let watched = handle.pointee.path { ownName = Self.ownName(of: String(cString: watched)) }
        recordOpen()
    }

    /// What an error of inotify's own limits means: its "no space" and "too
    /// many open files" name no disk and no descriptor limit of the process.
    static func limitDetail(_ code: Int32) -> String {
        switch code {
        case UV_ENOSPC.rawValue:
            "the user's inotify watches are used up (fs.inotify.max_user_watches)"
        case UV_EMFILE.rawValue:
            "too many open files, or the user's inotify instances are used up (fs.inotify.max_user_instances; each loop that watches uses one)"
        default:
            ""
        }
    }

    /// Closes the handle (once); on the loop thread.
    func close() {
        guard let handle else { return }
        self.handle = nil
        weft_close_and_free(weft_fs_event_handle(handle))
        recordClosed()
    }

    /// The loop shuts down with the handle open: close it, and end the watch
    /// (waking every waiting task to see that), so that its stream ends
    /// instead of waiting for ever for a change that no loop would report.
    func loopShuttingDown() {
        close()
        loopShutDown.store(true, ordering: .releasing)
        waiting.wakeAll()
    }

    /// Whether the loop shut down with the handle open, which ended the watch. From any thread.
    var hasEndedWithItsLoop: Bool { loopShutDown.load(ordering: .acquiring) }

    /// Closes a handle whose start failed (its stream never held it).
    deinit { close() }

    /// The name libuv gives the events of the watched file or directory
    /// itself, inotify naming none: what follows the path's last slash
    /// (`uv__basename_r`), so "" for a path ending in one ("dir/").
    static func ownName(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(path[path.utf8.index(after: slash)...])
    }

    /// Whether `event` is the last of the watch (``FileChanges`` ends after
    /// it): a failure, or a rename or removal of the watched path itself.
    /// libuv reports inotify's removal of the watch (`IN_DELETE_SELF`,
    /// `IN_IGNORED`) and a move of the file (`IN_MOVE_SELF`) alike, and the
    /// inode the path names afterwards tells them apart no better (a file
    /// removed and made again usually has the old number): each ends it.
    ///
    /// A rename alone: libuv reports any inotify bit but `IN_ATTRIB` and
    /// `IN_MODIFY` as a rename, `IN_ISDIR` among them, so a `chmod` or `touch`
    /// of the watched directory came as a change and a rename of its own name,
    /// and ended a watch the kernel still kept. The events that end a watch
    /// never come with a change.
    func endsWatch(_ event: Event) -> Bool {
        event.status < 0 || (event.events == Int32(UV_RENAME.rawValue) && event.name == ownName)
    }

    /// What `events` from libuv mean: with a change (`IN_ATTRIB`,
    /// `IN_MODIFY`), the rename beside it is only a directory's `IN_ISDIR`
    /// (inotify reports one kind of event at a time), so a change alone.
    static func kinds(_ events: Int32) -> Int32 {
        events & Int32(UV_CHANGE.rawValue) != 0 ? Int32(UV_CHANGE.rawValue) : events
    }

    private func deliver(_ event: Event) {
        if queue.count >= Self.queueLimit {
            droppedEvents += 1
            guard endsWatch(event) else { return }
            _ = queue.popFirst()
        }
        queue.append(event)
        waiting.wakeAll()
    }

    /// The oldest queued event, or pending after registering the waker; nil
    /// once the watch's last event (``endsWatch(_:)``) was taken.
    ///
    /// Copies of one stream share the watcher, and one of them takes that
    /// event: the watch ends for all of them there (its handle is closed,
    /// and the others are woken to see it), or the others waited for ever
    /// for a change the kernel would not report (it dropped the watch).
    func pollEvent(_ context: inout Context) -> Poll<Event?> {
        if hasEnded { return .ready(nil) }
        guard let event = queue.popFirst() else {
            waiting.register(context.waker)?.wake()
            return .pending
        }
        if endsWatch(event) {
            hasEnded = true
            close()
            waiting.wakeAll()
        }
        return .ready(event)
    }
}
