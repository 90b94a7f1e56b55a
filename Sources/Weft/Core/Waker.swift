/// Something a ``Waker`` can wake: a task, or anything a hand-written executor
/// wants to be told about. `wake()` may be called from any thread, any number of
/// times, and must be cheap (it usually only schedules a poll).
public protocol Wakeable: AnyObject, Sendable {
    /// Schedules the owner to be polled again.
    func wake()
}

/// A handle that schedules a task to be polled again.
///
/// Copying a waker is cloning it; every copy wakes the same task. Waking is
/// idempotent (waking a task that is already scheduled does nothing) and may be
/// done from any thread (docs/ARCHITECTURE.md, "Invariants").
@frozen
public struct Waker: Sendable {
    /// The object that is told to wake.
    public let target: any Wakeable

    /// A waker that wakes `target`.
    @inlinable
    public init(_ target: any Wakeable) {
        self.target = target
    }

    /// A waker that runs `body` on every wake, on the waking thread.
    public init(_ body: @escaping @Sendable () -> Void) {
        self.target = ClosureWakeable(body)
    }

    /// Schedules the task to be polled again. Callable from any thread.
    @inlinable
    public func wake() {
        target.wake()
    }

    /// Whether waking `other` would wake the same task as waking `self`.
    ///
    /// Leaf futures use it to skip replacing a stored waker with an equivalent one.
    @inlinable
    public func willWake(_ other: Waker) -> Bool {
        target === other.target
    }

    /// A waker that does nothing: for polling a future once by hand.
    public static let noop = Waker(NoopWakeable())
}

private final class ClosureWakeable: Wakeable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    func wake() { body() }
}

private final class NoopWakeable: Wakeable {
    func wake() {}
}

extension Optional where Wrapped == Waker {
    /// Stores `waker` unless the stored one already wakes the same task: what
    /// a leaf future does with the waker of each poll that returns pending.
    @inlinable @inline(__always)
    mutating func register(_ waker: Waker) {
        if let current = self, current.willWake(waker) { return }
        self = waker
    }
}
