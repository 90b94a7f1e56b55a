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
/// ``Runtime``'s executor) the future is polled inline first, and only if it is
/// pending is it spawned as a Weft task of that loop. Elsewhere it runs on
/// ``LoopThread/shared``. Either way the caller suspends until it completes.
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

/// Runs on the caller's executor, which must be a loop thread: polls inline, and
/// only if pending spawns the future as a task and suspends until it completes.
@inlinable
nonisolated(nonsending)
func awaitOnLoop<F: Future>(_ transfer: Transfer<F>) async throws(CancellationError) -> Transfer<F.Output> {
    guard let core = LoopCore.current else {
        preconditionFailure("value(of:) did not reach a Weft loop thread")
    }
    var future = transfer.value
    var context = Context(waker: .noop)
    if case .ready(let output) = future.poll(&context) {
        return Transfer(value: output)  // ready at once: no task, no suspension
    }
    if Task.isCancelled { throw CancellationError() }
    let task = RawTask.make(future, core: core)
    core.register(task)
    await withTaskCancellationHandler {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            JoinResumer(task: task, continuation: continuation).wake()
        }
    } onCancel: {
        task.abort()
    }
    var handle = JoinHandle<F.Output>(task)
    guard case .ready(let result) = handle.poll(&context) else {
        preconditionFailure("a task's JoinResumer resumed before the task completed")
    }
    switch result {
    case .success(let output): return Transfer(value: output)
    case .failure: throw CancellationError()
    }
}

/// Resumes a continuation once a task completes: it is the waker registered in
/// the task's join slot. Not generic, so creating and freeing one costs no
/// generic-metadata lookups.
///
/// Sendable because its state is touched only on the loop thread: it is woken
/// once when created (on the loop thread, in `awaitOnLoop`) and then by the
/// task's completion, which always happens on the loop thread.
@usableFromInline
final class JoinResumer: Wakeable, @unchecked Sendable {
    private var task: RawTask?
    private let continuation: UnsafeContinuation<Void, Never>

    @usableFromInline
    init(task: RawTask, continuation: UnsafeContinuation<Void, Never>) {
        self.task = task
        self.continuation = continuation
    }

    @usableFromInline
    func wake() {
        guard let task else { return }
        if task.registerJoinWaker(Waker(self)) {
            self.task = nil
            continuation.resume()
        }
    }
}
