import CLibUV
import CWeftSupport

/// An owner of a libuv handle on a loop, which it must close on that loop's
/// thread (`close()`), whichever thread lets go of it last (`closeOnLoop()`):
/// the network's (``SocketOwner``) and the watchers (`SignalWatcher`,
/// `FileWatcher`).
protocol LoopHandleOwner: AnyObject, SendableMetatype {
    var loop: EventLoop { get }
    /// Closes the handle; called on the loop thread only (or once the loop
    /// shut down, one close at a time: ``CloseHandle/loopClosed()``).
    func close()
}

/// What the handle owners of the network (`StreamConnection`, `StreamAcceptor`,
/// `DatagramEndpoint`) share: each owns a socket and its libuv handle on a
/// loop.
protocol SocketOwner: LoopHandleOwner {}

extension LoopHandleOwner {
    /// The error for a call from a thread other than the loop's (or from its
    /// creating thread inside another runtime's `block(on:)`), if it is one
    /// (``EventLoop/wrongThread(_:detail:)``).
    @inline(__always)
    func wrongThread(_ operation: String) -> WeftError? {
        loop.wrongThread(operation)
    }

    /// `close()` on the loop thread (``EventLoop/onLoop(_:)``).
    func closeOnLoop() {
        loop.onLoop { self.close() }
    }
}

/// Holds a handle owner for the values that share it (the copies of a signal
/// stream or of a file watch), and closes it on its loop when the last of
/// them goes: a value type has no deinit, and the owner's own deinit runs too
/// late to hand the owner to its loop (it closed the handle on whatever
/// thread dropped the last copy, racing the loop over its handle lists).
final class ClosingOnLoop<Owner: LoopHandleOwner> {
    let owner: Owner

    init(_ owner: Owner) { self.owner = owner }

    deinit { owner.closeOnLoop() }
}

/// A handle owner whose stream waits on the handle (a signal's, a file
/// watch's): when the loop shuts down with the handle open, nothing else
/// would close it while a stream is held, and the stream would wait for ever
/// for what no loop would report again. ``OpenWatches`` has the shutdown end
/// it.
protocol EndsWithItsLoop: LoopHandleOwner {
    /// The loop shuts down with the handle open: close it and end the stream,
    /// waking every task waiting on it.
    func loopShuttingDown()
}

extension EndsWithItsLoop {
    /// Records the handle as open on its loop (once it is started).
    func recordOpen() {
        loop.withAttachment(OpenWatches.key) { $0.open[ObjectIdentifier(self)] = self }
    }

    /// Records the handle as closed (from `close()`).
    func recordClosed() {
        loop.withAttachment(OpenWatches.key) { _ = $0.open.removeValue(forKey: ObjectIdentifier(self)) }
    }
}

/// The signal handles and file watches of one loop still open, so that its
/// shutdown ends them (``EndsWithItsLoop``); each also keeps the loop, which
/// could otherwise never be closed. Loop-confined, like the handles.
final class OpenWatches: LoopShutdownObserver {
    static let key = LoopAttachmentKey(.openWatches) { _ in OpenWatches() }
    var open: [ObjectIdentifier: any EndsWithItsLoop] = [:]

    func loopShuttingDown() {
        for watch in Array(open.values) { watch.loopShuttingDown() }
    }
}

extension SocketOwner {
    /// A new TCP, pipe or terminal handle on `loop` whose `data` points back at
    /// `self`, unretained (the handle is freed in its close callback, never
    /// before). A terminal handle is made on its open `descriptor` (which it
    /// then owns); the others ignore it.
    func makeStreamHandle(_ kind: StreamConnection.Kind, on loop: EventLoop, descriptor: Int32 = -1) throws(WeftError) -> UnsafeMutablePointer<uv_stream_t> {
        var error: Int32 = 0
        let stream: UnsafeMutablePointer<uv_stream_t>
        switch kind {
        case .tcp:
            guard let handle = weft_tcp_new(loop.uvLoop, &error) else {
                throw WeftError(uvCode: error, operation: "uv_tcp_init")
            }
            stream = weft_tcp_stream(handle)
        case .unixDomain, .pipe:
            guard let handle = weft_pipe_new(loop.uvLoop, &error) else {
                throw WeftError(uvCode: error, operation: "uv_pipe_init")
            }
            stream = weft_pipe_stream(handle)
        case .tty:
            guard let handle = weft_tty_new(loop.uvLoop, descriptor, &error) else {
                throw WeftError(uvCode: error, operation: "uv_tty_init")
            }
            stream = weft_tty_stream(handle)
        }
        stream.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        return stream
    }
}

extension EventLoop {
    /// Why a new handle (listener, signal watcher) must not be opened on this
    /// loop from the calling thread, if it must not: the loop belongs to another
    /// thread (`.wrongThread`), or it was shut down and would never serve the
    /// handle (`.shutDown`).
    func refusesNewHandle(operation: String) -> WeftError? {
        if !isOnLoopThread { return WeftError(.wrongThread, operation: operation) }
        if isShutDown { return shutDownError(operation) }
        return nil
    }
}
