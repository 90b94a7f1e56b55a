import CLibUV
import CWeftSupport

/// The owner of a `uv_signal_t` (allocated apart, `data` unretained, freed in
/// the close callback), closed on its loop's thread when the last copy of its
/// stream goes (``ClosingOnLoop``), or when the loop shuts down first
/// (``OpenWatches``): then its deliveries end, since no loop would run its
/// callback again. An active signal handle keeps the loop alive, so waiting
/// for a signal is never reported as stuck.
final class SignalWatcher: EndsWithItsLoop {
    /// Nil once closed.
    private var handle: UnsafeMutablePointer<uv_signal_t>?
    /// Kept alive while the handle is open (as streams and listeners do): a
    /// loop that goes away with a handle still open cannot be closed and would
    /// leak its descriptors.
    let loop: EventLoop
    /// Deliveries since the last one was taken (coalesced), whether they have
    /// ended (set when the loop shut down with the handle open), and the tasks
    /// waiting for one (copies of an installed stream share this watcher, and
    /// each may wait in a task of its own). Locked: a stream may be polled
    /// from any thread (a `value(of:)` of a `shutdownSignal()` off its loop),
    /// while deliveries come on the loop's. A signal stream is no hot path.
    private let deliveries = Locked<(pending: Int, ended: Bool, waiting: WaitingWakers)>((0, false, WaitingWakers()))

    init(loop: EventLoop, number: Int32) throws(WeftError) {
        self.loop = loop
        var error: Int32 = 0
        guard let handle = weft_signal_new(loop.uvLoop, &error) else {
            throw WeftError(uvCode: error, operation: "uv_signal_init")
        }
        self.handle = handle
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let result = weft_signal_watch(handle, { handle, number in
            // The delivery first: a slow event observer must not hold it back.
            if let watcher = handleOwner(handle, as: SignalWatcher.self) {
                var waiting = watcher.deliveries.withLock { deliveries in
                    deliveries.pending += 1
                    return deliveries.waiting.take()
                }
                waiting.wakeAll()
            }
            RuntimeEvents.report(.signalReceived(number))
        }, number)
        if result < 0 {
            // Every stored property is set, so throwing runs `deinit`, which
            // closes the handle (on this thread, the loop's).
            throw WeftError(uvCode: result, operation: "signal \(number)")
        }
        // Blocked (inherited), the signal would never be delivered.
        unblockSignalOnThisThread(number)
        recordOpen()
    }

    /// Closes the handle (once); on the loop thread.
    func close() {
        guard let handle else { return }
        self.handle = nil
        weft_signal_close(handle)  // gives the signal back its disposition if it was the last watcher
        recordClosed()
    }

    /// The loop shuts down with the handle open: close it, and end the
    /// deliveries (waking every waiting task to see that), so that a stream
    /// polled elsewhere ends instead of waiting for ever for a signal that
    /// no loop would report.
    func loopShuttingDown() {
        close()
        var waiting = deliveries.withLock { deliveries in
            deliveries.ended = true
            return deliveries.waiting.take()
        }
        waiting.wakeAll()
    }

    /// Closes a handle whose start failed (its stream never held it).
    deinit { close() }

    /// Ready with `true` once a delivery came since the last one taken
    /// (taking it), with `false` once the deliveries ended (the loop shut
    /// down). From any thread.
    func pollDelivery(_ context: inout Context) -> Poll<Bool> {
        let waker = context.waker
        var letGo: WaitingWakers.LetGo?
        defer { letGo?.wake() }  // after the lock
        return deliveries.withLock { deliveries in
            if deliveries.pending > 0 {
                deliveries.pending = 0
                return .ready(true)
            }
            if deliveries.ended { return .ready(false) }
            letGo = deliveries.waiting.register(waker)
            return .pending
        }
    }
}
