import CWeftSupport
import Synchronization

/// A value moved to another thread exactly once.
///
/// `@unchecked Sendable` is sound here because every `Transfer` is built from a
/// value the caller gave up (`sending`, or a future's output taken out of its
/// task), is moved across one thread boundary, and is unwrapped once on the
/// other side; no two threads ever hold the value at the same time.
@usableFromInline
struct Transfer<Value>: @unchecked Sendable {
    @usableFromInline var value: Value

    @inlinable
    init(value: Value) {
        self.value = value
    }
}

/// Awaits a poll-based future from `async` code.
///
/// On a Weft loop thread (inside a task running on a ``LoopThread`` or a
/// ``Runtime``'s executor) the calling Swift task polls the future itself, and
/// while it is pending suspends until the future's waker fires; no Weft task is
/// spawned. Elsewhere it does so on ``LoopThread/shared``.
///
/// **Cancellation:** cancelling the calling Swift task drops the future (its
/// timers stopped, its reads stopped, its handles released) and throws
/// `CancellationError`.
@inlinable
nonisolated(nonsending)
public func value<F: Future>(of future: sending F) async throws(CancellationError) -> sending F.Output {
    try await value(transferring: Transfer(value: future)).value
}

/// `value(of:)` for a future already wrapped for the move to the loop thread.
/// Runs it on `loop` if given (a stream's own loop), else on the current loop,
/// else on the shared one.
@inlinable
nonisolated(nonsending)
func value<F: Future>(
    transferring transfer: Transfer<F>, on loop: LoopTaskExecutor? = nil
) async throws(CancellationError) -> Transfer<F.Output> {
    if loop?.target.isOnLoopThread ?? (LoopCore.current != nil) {
        // Already on the loop (a task preferring it, or an actor pinned to it):
        // stay on the caller's executor.
        return try await awaitOnLoop(transfer)
    }
    do {
        return try await withTaskExecutorPreference(loop ?? LoopThread.shared.taskExecutor) {
            try await awaitOnPreferredLoop(transfer)
        }
    } catch {
        throw error as! CancellationError
    }
}

extension Future where Self: Sendable {
    /// This future's output, awaited from `async` code. See ``value(of:)``.
    @inlinable
    public var value: Output {
        get async throws(CancellationError) {
            try await Transfer(value: Weft.value(of: self)).value
        }
    }
}

/// Hops to the task's preferred executor (a plain nonisolated async function
/// runs there), which is the loop, then awaits the future.
@inlinable
func awaitOnPreferredLoop<F: Future>(_ transfer: Transfer<F>) async throws(CancellationError) -> Transfer<F.Output> {
    try await awaitOnLoop(transfer)
}

/// Runs on the caller's executor, which must be a loop thread: polls the future
/// inline, and while it is pending suspends until its waker fires, then polls
/// again. No task is spawned: the waker resumes this Swift task directly.
///
/// Cancelling the Swift task wakes it; it then drops the future (on the loop
/// thread, where it was polled) and throws `CancellationError`.
@inlinable
nonisolated(nonsending)
func awaitOnLoop<F: Future>(_ transfer: Transfer<F>) async throws(CancellationError) -> Transfer<F.Output> {
    guard weft_current_runtime() != nil else {
        preconditionFailure("value(of:) did not reach a Weft loop thread")
    }
    var future = transfer.value
    // Polled with the real waker from the first poll: a future that wakes
    // itself and returns pending (a yield) must see its task suspend.
    let resumer = ContinuationWaker()
    var context = Context(waker: Waker(resumer))
    while true {
        if case .ready(let output) = future.poll(&context) { return Transfer(value: output) }
        if Task.isCancelled { throw CancellationError() }
        // Only the suspension runs inside the handler: its closure may run on
        // another executor (an actor caller's isolation is not always carried
        // into it), and the future must be polled here, on the loop thread.
        await withTaskCancellationHandler {
            await resumer.suspend()
        } onCancel: {
            resumer.wake()
        }
    }
}

/// The waker of a future awaited from `async` code: it resumes the suspended
/// Swift task, or, when woken before the task suspends, makes the next
/// `suspend()` return at once, so no wake-up is lost.
///
/// Sendable because `continuation` is handed between threads by `state`: the
/// suspending side writes it before publishing `waiting` (release), and the
/// waking side reads it only after moving `state` from `waiting` (acquire).
@usableFromInline
final class ContinuationWaker: Wakeable, @unchecked Sendable {
    @usableFromInline static let idle: UInt8 = 0
    /// Woken while not suspended.
    @usableFromInline static let woken: UInt8 = 1
    /// Suspended: `continuation` is set.
    @usableFromInline static let waiting: UInt8 = 2

    @usableFromInline let state = Atomic<UInt8>(ContinuationWaker.idle)
    @exclusivity(unchecked) @usableFromInline var continuation: UnsafeContinuation<Void, Never>?

    @usableFromInline init() {}

    /// Returns once the waker fired. If it fired since the last return (the
    /// future woke itself, a yield), the task still goes to the back of its
    /// executor's queue first, as a Weft task would.
    @inlinable
    nonisolated(nonsending)
    func suspend() async {
        if state.compareExchange(expected: Self.woken, desired: Self.idle, ordering: .acquiring).exchanged {
            await Task.yield()
            return
        }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            self.continuation = continuation
            if !state.compareExchange(expected: Self.idle, desired: Self.waiting, ordering: .acquiringAndReleasing).exchanged {
                // Woken in between: resume ourselves.
                state.store(Self.idle, ordering: .relaxed)
                self.continuation = nil
                continuation.resume()
            }
        }
    }

    @usableFromInline
    func wake() {
        var current = state.load(ordering: .relaxed)
        while true {
            switch current {
            case Self.waiting:
                let (exchanged, original) = state.compareExchange(
                    expected: Self.waiting, desired: Self.idle, ordering: .acquiringAndReleasing)
                if exchanged {
                    let continuation = self.continuation.take()!
                    continuation.resume()
                    return
                }
                current = original
            case Self.idle:
                let (exchanged, original) = state.compareExchange(
                    expected: Self.idle, desired: Self.woken, ordering: .acquiringAndReleasing)
                if exchanged { return }
                current = original
            default:
                return  // already woken
            }
        }
    }
}
