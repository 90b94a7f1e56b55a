import CLibUV
import CWeftSupport
import Glibc

/// Deliveries of one Unix signal, as a stream (over a libuv `uv_signal_t`).
/// See ``signals(_:)``.
///
/// The handler is installed at the first poll. Deliveries that arrive while
/// nobody polls are coalesced: the next poll yields one element for them.
/// Copies made after ``install(runtime:)`` share the handler: several tasks may
/// each wait on a copy, every delivery wakes them all, and one of them takes it.
///
/// **Cancellation:** dropping the stream removes the handler (closes the handle).
public struct SignalStream: PollStream {
    let number: Int32
    var watcher: SignalWatcher?
    var installError: WeftError?

    /// Installs the handler now instead of at the first poll, so a signal that
    /// arrives from here on is seen (e.g. before a server announces itself).
    /// Uses `runtime`, or the runtime running the calling thread; fails with
    /// `.wrongThread` for a runtime that belongs to another thread and with
    /// `.shutDown` for one that was shut down.
    public mutating func install(runtime: Runtime? = nil) throws(WeftError) {
        guard watcher == nil else { return }
        guard let loop = runtime?.core ?? LoopCore.current else {
            throw WeftError(.invalidArgument, operation: "signal \(number)",
                            detail: "no runtime: pass one, or install from inside a task")
        }
        if let error = loop.refusesNewHandle(operation: "signal \(number)") { throw error }
        watcher = try SignalWatcher(loop: loop, number: number)
    }

    /// Yields the signal number per delivery; never ends. If the handler cannot
    /// be installed, the stream ends at once (`install()` reports why).
    public mutating func pollNext(_ context: inout Context) -> Poll<Int32?> {
        if watcher == nil {
            do { try install() } catch { return .ready(nil) }
        }
        let watcher = watcher!
        if watcher.pendingDeliveries > 0 {
            watcher.pendingDeliveries = 0
            return .ready(number)
        }
        watcher.waiting.register(context.waker)
        return .pending
    }
}

/// The owner of a `uv_signal_t` (allocated apart, `data` unretained, freed in
/// the close callback, closed in `deinit`). An active signal handle keeps the
/// loop alive, so waiting for a signal is never reported as stuck.
final class SignalWatcher {
    private let handle: UnsafeMutablePointer<uv_signal_t>
    /// Kept alive while the handle is open (as streams and listeners do): a
    /// loop that goes away with a handle still open cannot be closed and would
    /// leak its descriptors.
    private let loop: LoopCore
    var pendingDeliveries = 0
    /// The tasks waiting for a delivery: copies of an installed stream share
    /// this watcher, and each may wait in a task of its own.
    var waiting = WaitingWakers()

    init(loop: LoopCore, number: Int32) throws(WeftError) {
        self.loop = loop
        var error: Int32 = 0
        guard let handle = weft_signal_new(loop.loop, &error) else {
            throw WeftError(uvCode: error, operation: "uv_signal_init")
        }
        self.handle = handle
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let result = uv_signal_start(handle, { handle, _ in
            guard let data = handle?.pointee.data else { return }
            let watcher = Unmanaged<SignalWatcher>.fromOpaque(data).takeUnretainedValue()
            watcher.pendingDeliveries += 1
            watcher.waiting.wakeAll()
        }, number)
        if result < 0 {
            // Every stored property is set, so throwing runs `deinit`, which
            // closes the handle (closing it here too would close it twice).
            throw WeftError(uvCode: result, operation: "signal \(number)")
        }
        // A process may start with the signal blocked (inherited from a parent
        // thread's mask); then it would never be delivered. Let the loop thread take it.
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, number)
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
    }

    deinit {
        weft_close_and_free(weft_signal_handle(handle))
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
        if case .ready(let number?) = interrupt.pollNext(&context) { return .ready(number) }
        if case .ready(let number?) = terminate.pollNext(&context) { return .ready(number) }
        return .pending
    }
}

/// A future that completes with the first of SIGINT or SIGTERM.
public func shutdownSignal() -> ShutdownSignal {
    ShutdownSignal()
}
