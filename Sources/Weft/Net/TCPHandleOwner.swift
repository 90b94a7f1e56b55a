import CLibUV
import CWeftSupport

/// What `StreamCore` and `ListenerCore` share: each owns one `uv_tcp_t` on a
/// loop and must close it on that loop's thread.
protocol TCPHandleOwner: AnyObject, SendableMetatype {
    var loop: LoopCore { get }
    /// Closes the handle; called on the loop thread only.
    func close()
}

extension TCPHandleOwner {
    /// A new TCP handle on `loop` whose `data` points back at `self`, unretained
    /// (invariant 4: the handle is freed in its close callback, never before).
    func makeHandle(on loop: LoopCore) throws(WeftError) -> UnsafeMutablePointer<uv_tcp_t> {
        var error: Int32 = 0
        guard let handle = weft_tcp_new(loop.loop, &error) else {
            throw WeftError(uvCode: error, operation: "uv_tcp_init")
        }
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        return handle
    }

    /// The error for a call from a thread other than the loop's, if it is one.
    func wrongThread(_ operation: String) -> WeftError? {
        loop.isOnLoopThread ? nil : WeftError(.wrongThread, operation: operation)
    }

    /// What an async operation on this handle throws when awaiting its future
    /// was cancelled: ``WeftError/Kind/closed`` if that is because the handle's
    /// loop has shut down (the task runs on the loop's orphaned-jobs queue, and
    /// the shutdown closed the handle), else `CancellationError`.
    ///
    /// The async operations each spell out their `do`/`catch` around
    /// `awaitValue` rather than share a generic helper: called, the helper costs
    /// each read and write a frame on the task; always inlined, it costs a
    /// retain and a release, or (generic over this protocol) crashes the 6.3
    /// compiler.
    func cancelledError(_ operation: String) -> any Error {
        guard OrphanedJobs.isRunning(forLoop: loop.identity) else { return CancellationError() }
        return WeftError(.closed, operation: operation, detail: "its loop has shut down")
    }

    /// `close()` on the loop thread: at once when called there, else handed to
    /// the loop as a job (run whenever the loop next runs).
    func closeOnLoop() {
        if loop.isOnLoopThread {
            close()
        } else {
            let owner = Transfer(value: self)
            Task(executorPreference: loop.executors.task) { owner.value.close() }
        }
    }
}

extension LoopCore {
    /// Why a new handle (listener, signal watcher) must not be opened on this
    /// loop from the calling thread, if it must not: the loop belongs to another
    /// thread (`.wrongThread`), or it was shut down and would never serve the
    /// handle (`.shutDown`).
    func refusesNewHandle(operation: String) -> WeftError? {
        if !isOnLoopThread { return WeftError(.wrongThread, operation: operation) }
        if isShutDown {
            return WeftError(.shutDown, operation: operation, detail: "the runtime was shut down; nothing would ever serve it")
        }
        return nil
    }
}
