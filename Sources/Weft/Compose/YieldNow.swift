/// A future that gives other tasks (and the loop's timers and I/O) a turn, then
/// completes. See ``yieldNow()``.
///
/// **Cancellation:** nothing to cancel.
@frozen
public struct YieldNow: Future {
    @usableFromInline var hasYielded = false

    /// A future that has not yielded yet.
    @inlinable
    public init() {}

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        if hasYielded { return .ready(()) }
        hasYielded = true
        context.waker.wake()
        return .pending
    }
}

/// Completes after one trip through the ready queue: the task is re-queued
/// behind every task that is ready now.
///
/// On a deterministic runtime (``RuntimeOptions/deterministic(seed:)``) the
/// next task is drawn at random from every ready task, the yielding one
/// included: a yield does not promise that the others run first there.
///
/// Unlike Tokio's `yield_now`, it does not wait for an I/O iteration: the loop
/// takes in I/O and timers between batches of polls, at least every 61 polls
/// while work stays ready, so a task that yields in a loop lets them in within
/// that bound, but its next poll may come before them (alone on its loop, it
/// runs again at once).
@inlinable
public func yieldNow() -> YieldNow {
    YieldNow()
}
