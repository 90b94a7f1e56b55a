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
/// behind every task that is ready now, and the loop runs an I/O iteration first.
@inlinable
public func yieldNow() -> YieldNow {
    YieldNow()
}
