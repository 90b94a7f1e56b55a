import CWeftSupport

/// Cooperative scheduling budget (Tokio's `coop`): a task that keeps finding its
/// futures ready (draining a full channel, say) would otherwise never return
/// `.pending`, and the loop could run neither other tasks nor I/O. Each task
/// poll, and each Swift job the loop runs (a Swift task's turn on the loop),
/// starts with `perPoll` units; leaf futures that can be ready again and again
/// take one per ready poll (a pending poll gives its unit back,
/// ``refundingIfPending(_:)``, as Tokio's `RestoreOnPending` does), and once
/// they are spent they wake their task and return `.pending`, so it yields
/// and continues at its next turn (a Swift task awaiting such a future yields
/// the loop the same way).
///
/// The leaves that take from it: every channel receiver (mpsc, oneshot,
/// broadcast, watch) and a bounded channel's send and reserve, `Notify`'s
/// `notified()`, `AsyncSemaphore.acquire` (and so `AsyncLock.lock`), a
/// stream's reads and writes (`pollRead`, `pollFillBuffer`, `pollWrite`, and
/// the futures built on them), UDP receives and sends, a listener's `accept()`, an
/// interval's ticks, a sleep whose deadline has passed at its first poll,
/// `iter`'s elements, and a ``FutureSet`` (under `joinAll`,
/// `forEachConcurrent`, `bufferUnordered`) polling again children that woke
/// while it polled.
public enum Budget {
    /// Units per task poll.
    public static let perPoll = 128

    /// Starts a task poll's budget.
    @usableFromInline
    static func startPoll() { weft_budget_set(perPoll) }

    /// Ends a task poll: outside tasks the budget is unlimited.
    @usableFromInline
    static func endPoll() { weft_budget_set(-1) }

    /// Takes one unit; `false` when the task must yield now. Leaf futures call it
    /// before handing out a ready result, and on `false` wake `context.waker` and
    /// return `.pending` (losing nothing). Always `true` outside a task poll.
    public static func consume() -> Bool {
        weft_budget_consume()
    }

    /// Takes one unit, or, when the budget is spent, wakes `waker` and returns
    /// false: the leaf then returns `.pending` having taken nothing.
    @inlinable
    public static func consume(orWaking waker: Waker) -> Bool {
        if consume() { return true }
        waker.wake()
        return false
    }

    /// Whether the task being polled has spent its budget (false outside a
    /// task poll, where it is unlimited).
    @usableFromInline
    static var isSpent: Bool { weft_budget_get() == 0 }

    /// Runs `body` with an unlimited budget, then gives the task its own back:
    /// for a leaf that must not be starved by the futures polled before it in
    /// the same poll (a ``Timeout``'s timer behind a greedy inner future).
    @usableFromInline
    static func unconstrained<T>(_ body: () -> T) -> T {
        let saved = weft_budget_get()
        weft_budget_set(-1)
        defer { weft_budget_set(saved) }
        return body()
    }

    /// Gives back a unit taken by ``consume()`` for a poll that turned out
    /// pending.
    @inlinable
    public static func refund() {
        weft_budget_refund()
    }

    /// `poll`, giving back the unit its leaf took if it is pending: what such
    /// a leaf returns, `.pending` included, after ``consume(orWaking:)``
    /// took its unit. Were a pending poll charged, a task polling more
    /// pending leaves than a poll's budget (a `race` of 200 receivers) would
    /// spend it on the first 128, and each later leaf would wake the task at
    /// once without looking: the task spun, and a value sent to one of those
    /// was never seen. (Not a closure around the leaf's poll: capturing the
    /// leaf's state cost the channel benchmark half again its time.)
    @inlinable @inline(__always)
    public static func refundingIfPending<T>(_ poll: Poll<T>) -> Poll<T> {
        if case .pending = poll { refund() }
        return poll
    }
}
