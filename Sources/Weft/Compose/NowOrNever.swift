extension Future {
    /// Polls the future once, in place, with a waker that does nothing:
    /// `.ready` with its output if it can finish now, `.pending` otherwise. A
    /// pending future may be polled again later (by a task, with a real
    /// waker); it must not be polled after `.ready`.
    ///
    /// A future that needs a runtime (a `Sleep`, a read) still needs one: call
    /// it inside a task, or on futures that need none. Unlike futures-rs's
    /// `poll_immediate`, which polls with the caller's context, it hands the
    /// future the waker that does nothing, which takes the place of the one it
    /// kept: inside a task, poll the future again with the task's context
    /// before returning `.pending`, or nothing wakes the task.
    @inlinable
    public mutating func pollOnce() -> Poll<Output> {
        var context = Context(waker: .noop)
        return poll(&context)
    }

    /// The output if the future finishes at its first poll, else `nil`
    /// (futures-rs's `now_or_never`), polled with a waker that does nothing.
    ///
    /// **Cancellation:** when it is not ready, the future is dropped (its work
    /// cancelled) and whatever it would have produced is lost.
    @inlinable
    public consuming func nowOrNever() -> Output? {
        var future = self
        guard case .ready(let output) = future.pollOnce() else { return nil }
        return output
    }
}
