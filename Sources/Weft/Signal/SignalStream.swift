import CLibUV
import CWeftSupport

/// Deliveries of one Unix signal, as a stream (over a libuv `uv_signal_t`).
/// See ``signals(_:)``.
///
/// The handler is installed at the first poll. Deliveries that arrive while
/// nobody polls are coalesced: the next poll yields one element for them.
///
/// **Cancellation:** dropping the stream removes the handler (closes the handle).
public struct SignalStream: PollStream {
    let number: Int32
    var watcher: SignalWatcher?

    public mutating func pollNext(_ context: inout Context) -> Poll<Int32?> {
        if watcher == nil {
            guard let loop = LoopCore.current else { preconditionFailure("signal stream polled outside a Weft runtime") }
            do { watcher = try SignalWatcher(loop: loop, number: number) } catch {
                preconditionFailure("\(error)")
            }
        }
        let watcher = watcher!
        if watcher.pendingDeliveries > 0 {
            watcher.pendingDeliveries = 0
            return .ready(number)
        }
        if watcher.waker.map({ !$0.willWake(context.waker) }) ?? true { watcher.waker = context.waker }
        return .pending
    }
}

/// The owner of a `uv_signal_t` (allocated apart, `data` unretained, freed in
/// the close callback, closed in `deinit`). An active signal handle keeps the
/// loop alive, so waiting for a signal is never reported as stuck.
final class SignalWatcher {
    private let handle: UnsafeMutablePointer<uv_signal_t>
    var pendingDeliveries = 0
    var waker: Waker?

    init(loop: LoopCore, number: Int32) throws(WeftError) {
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
            watcher.waker.take()?.wake()
        }, number)
        if result < 0 {
            weft_close_and_free(weft_signal_handle(handle))
            throw WeftError(uvCode: result, operation: "signal \(number)")
        }
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
/// for a graceful shutdown.
///
/// **Cancellation:** dropping it removes both handlers.
public func shutdownSignal() -> Map<Select<NextElement<SignalStream>, NextElement<SignalStream>>, Int32> {
    select(either: signals(SIGINT).next(), or: signals(SIGTERM).next()).map { winner in
        switch winner {
        case .left(let delivery), .right(let delivery): return delivery.element ?? 0
        }
    }
}
