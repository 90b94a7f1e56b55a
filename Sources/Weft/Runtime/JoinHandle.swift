/// A spawned task's output, as a future; also the way to abort the task.
///
/// Awaiting (polling) the handle yields `.success(output)` when the task finished,
/// or `.failure(JoinError)` when it was aborted or its runtime shut down. Poll it
/// from any thread or task; copies of it may be awaited in several tasks at
/// once (each is woken when the task finishes), but the output is taken once:
/// a second take traps.
///
/// **Dropping a handle detaches the task**, as in Tokio: the task keeps running
/// and its output is discarded. Call ``abort()`` to cancel it instead.
///
/// Unlike Tokio's, the output goes with the task object, when its last
/// reference does: the handles' (every copy, ``AbortHandle``s too), and the
/// wakers of the task kept by whatever it last waited on. A detached task
/// whose output owns a socket, and which gave up a wait on that same socket
/// (a receive, an accept, a read lost to a `select` or a `timeout`), keeps
/// the socket open until its next event wakes the stale waker; an idle one,
/// for good. Return such a resource only to a handle you await, or close it
/// before the task ends.
///
/// **Cancellation:** dropping a pending `JoinHandle` future only stops waiting;
/// the task is not affected.
@frozen
public struct JoinHandle<Output>: Future {
    @usableFromInline let task: RawTask

    /// A handle to `task`, whose future's output type must be `Output`.
    @inlinable
    init(_ task: RawTask) {
        self.task = task
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Output, JoinError>> {
        // A finished task's output is taken without touching the waker.
        guard task.isComplete || task.registerJoinWaker(context.waker) else { return .pending }
        task.claimOutput()
        var output: Result<Output, JoinError>?
        withUnsafeMutablePointer(to: &output) { task.perform(.takeOutput(UnsafeMutableRawPointer($0))) }
        return .ready(output!)
    }

    /// Cancels the task: its future is dropped the next time the runtime gets to
    /// it (which stops its timers and I/O), and the handle completes with
    /// `JoinError(.aborted)`. Does nothing if the task already finished. Callable
    /// from any thread.
    @inlinable
    public func abort() { abortHandle.abort() }

    /// Whether the task has finished (completed, aborted or cancelled by shutdown).
    @inlinable
    public var isFinished: Bool { abortHandle.isFinished }

    /// A handle that can abort the task but not take its output.
    @inlinable
    public var abortHandle: AbortHandle { AbortHandle(task) }
}

extension JoinHandle: Sendable where Output: Sendable {}

/// What aborts a spawned task without taking its output (Tokio's
/// `AbortHandle`): what ``JoinSet/spawn(_:)`` returns, since the set takes
/// the task's output itself. Copies abort the same task; callable from any
/// thread.
///
/// Unlike Tokio's, it holds the task, and a finished task keeps an output
/// nobody took until its last handle, join or abort, is gone: the abort
/// handle of a detached task whose output owns a resource (a connection)
/// keeps that resource open. Take the output, or let the handle go.
@frozen
public struct AbortHandle: Sendable {
    @usableFromInline let task: RawTask

    @inlinable
    init(_ task: RawTask) {
        self.task = task
    }

    /// Cancels the task, as ``JoinHandle/abort()`` does. Does nothing if the
    /// task already finished.
    @inlinable
    public func abort() {
        task.abort()
    }

    /// Whether the task has finished (completed, aborted or cancelled by shutdown).
    @inlinable
    public var isFinished: Bool {
        task.isComplete
    }
}
