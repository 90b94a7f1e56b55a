/// A value that becomes available later, computed by polling.
///
/// Futures are lazy (docs/ARCHITECTURE.md, invariant 1): creating one does nothing; work starts at the
/// first ``poll(_:)``. The executor calls `poll` when the task owning the future
/// is woken; a future that returns ``Poll/pending`` must first have arranged for
/// `context.waker` to be woken (docs/ARCHITECTURE.md, invariant 2), storing the *newest* waker it was
/// given because a future may move between tasks.
///
/// Futures are polled in place: after the first poll, keep polling the same
/// value rather than a copy. Dropping a future before it finishes cancels it;
/// each future's documentation says what that stops (docs/ARCHITECTURE.md, invariant 5).
///
/// ```swift
/// struct Countdown: Future {
///     var remaining: Int
///     mutating func poll(_ context: inout Context) -> Poll<String> {
///         if remaining == 0 { return .ready("liftoff") }
///         remaining -= 1
///         context.waker.wake()   // ask to be polled again soon
///         return .pending
///     }
/// }
/// ```
public protocol Future<Output> {
    /// What the future produces.
    associatedtype Output

    /// Advances the future as far as possible without blocking.
    ///
    /// Returning `.pending` obliges the future to have arranged for
    /// `context.waker` to be woken when progress is possible. Polling again after
    /// `.ready` is a programming error; futures may trap.
    mutating func poll(_ context: inout Context) -> Poll<Output>
}

/// What a future is polled with: the waker of the task being polled.
@frozen
public struct Context {
    /// Wakes the task that is polling. Clone it (copy it) to keep it.
    public var waker: Waker

    /// A context that wakes `waker`.
    @inlinable
    public init(waker: Waker) {
        self.waker = waker
    }
}
