import CLibUV

/// Deliveries of one Unix signal, as a stream (over a libuv `uv_signal_t`).
/// See ``signals(_:)``.
///
/// The handler is installed at the first poll. Deliveries that arrive while
/// nobody polls are coalesced: the next poll yields one element for them.
/// Copies made after ``install(runtime:)`` share the handler: several tasks may
/// each wait on a copy, every delivery wakes them all, and one of them takes it.
///
/// The handler lives on the loop it was installed on (its handle is closed
/// there); the stream may be polled from any thread, and its ``values``
/// await each delivery on that loop. When that loop shuts down, the handler
/// is removed and the stream ends, wherever it is polled.
///
/// **Cancellation:** dropping the stream (its last copy) removes the handler:
/// the handle is closed on its loop, whichever thread drops it. When no other
/// stream watches the signal, it gets back the disposition it had before the
/// first did (ignored under `nohup`, say; libuv alone would leave the
/// default action, which for most signals ends the process).
public struct SignalStream: PollStream {
    let number: Int32
    var watcher: ClosingOnLoop<SignalWatcher>?

    /// Installs the handler now instead of at the first poll, so a signal that
    /// arrives from here on is seen (e.g. before a server announces itself).
    /// Uses `runtime`, or the runtime running the calling thread; fails with
    /// `.wrongThread` for a runtime that belongs to another thread and with
    /// `.shutDown` for one that was shut down.
    public mutating func install(runtime: Runtime? = nil) throws(WeftError) {
        guard watcher == nil else { return }
        guard let loop = runtime?.loop ?? EventLoop.current else {
            throw WeftError(.invalidArgument, operation: "signal \(number)",
                            detail: "no runtime: pass one, or install from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: "signal \(number)") { throw error }
        watcher = ClosingOnLoop(try SignalWatcher(loop: loop, number: number))
    }

    /// Yields the signal number per delivery. Ends when the loop it was
    /// installed on shuts down (the handler is removed then), and at once if
    /// the handler cannot be installed (`install()` reports why).
    public mutating func pollNext(_ context: inout Context) -> Poll<Int32?> {
        if watcher == nil {
            do { try install() } catch { return .ready(nil) }
        }
        return watcher!.owner.pollDelivery(&context).map { $0 ? number : nil }
    }
}

/// A stream that yields `number` each time the process receives that signal.
/// (Named so it cannot be mistaken for the C `signal`.)
public func signals(_ number: Int32) -> SignalStream {
    SignalStream(number: number)
}

/// A future that completes with the first of SIGINT or SIGTERM: the usual cue
/// for a graceful shutdown. See ``shutdownSignal()``.
///
/// Its handlers are installed at the first poll, on the runtime polling it.
/// Polled where they cannot be (outside a Weft runtime, as a ``Sleep`` would
/// be, or on a runtime that was shut down), or once the loop they were
/// installed on shut down (which removed them), it traps: its output, a
/// signal number, cannot carry the error, and pending with no handler to
/// wake it would wait for ever. ``install(runtime:)`` reports that error instead.
///
/// **Cancellation:** dropping it removes both handlers.
public struct ShutdownSignal: Future {
    var interrupt = signals(SIGINT)
    var terminate = signals(SIGTERM)

    /// Installs both handlers now rather than at the first poll. Call it before
    /// telling the world the process is ready, so an early SIGTERM is not fatal.
    public mutating func install(runtime: Runtime? = nil) throws(WeftError) {
        try interrupt.install(runtime: runtime)
        try terminate.install(runtime: runtime)
    }

    public mutating func poll(_ context: inout Context) -> Poll<Int32> {
        if interrupt.watcher == nil || terminate.watcher == nil {
            // Each stream would end at once, and this wait for neither.
            do { try install() } catch { preconditionFailure("shutdownSignal() polled where its handlers cannot be installed: \(error)") }
        }
        let interrupted = interrupt.pollNext(&context)
        if case .ready(let number?) = interrupted { return .ready(number) }
        let terminated = terminate.pollNext(&context)
        if case .ready(let number?) = terminated { return .ready(number) }
        if case .ready(nil) = interrupted, case .ready(nil) = terminated {
            preconditionFailure("shutdownSignal() polled after the loop it was installed on shut down, which removed its handlers")
        }
        return .pending
    }
}

/// A future that completes with the first of SIGINT or SIGTERM.
public func shutdownSignal() -> ShutdownSignal {
    ShutdownSignal()
}
