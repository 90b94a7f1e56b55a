/// A stream of ticks at a fixed period, created by ``interval(every:)`` or
/// ``interval(every:startingAt:)``.
///
/// Each element is the tick's index in the schedule: tick `n` is due at
/// `start + n × period` until a late tick or ``reset()`` moves the schedule.
/// The first tick (index 0) is due at the start: at once for
/// ``interval(every:)``.
///
/// **Missed ticks** (a tick taken more than 5 ms after it was due, Tokio's
/// threshold: a timer fires up to about a millisecond late, which must not
/// count) follow ``missedTickBehavior``: ``MissedTickBehavior/skip`` by default (the overdue
/// tick fires once, at once, and the next is the next tick of the schedule
/// still in the future; the gap in indices tells how many were skipped),
/// ``MissedTickBehavior/burst`` (Tokio's default: every missed tick fires, back
/// to back) or ``MissedTickBehavior/delay`` (the schedule moves: the next tick
/// is a period after the late one). A tick late by 5 ms or less is on time:
/// the next is due a period after it was, at once if that is past.
///
/// **Cancellation:** dropping the interval (or a pending `next()`) disarms its
/// timer; no tick is lost by dropping a pending `next()` future.
public struct Interval: PollStream {
    let period: UInt64
    /// The deadline of tick `nextIndex` (the armed timer's).
    var nextDeadline: UInt64
    var nextIndex: Int = 0
    var timer: Sleep
    /// What happens to ticks the consumer was too late for.
    public var missedTickBehavior = MissedTickBehavior.skip

    /// How late a tick must be taken to count as missed (Tokio's 5 ms): a
    /// timer fires up to about a millisecond after its deadline, which must
    /// not move a schedule every tick, nor skip ticks of a short period.
    static let lateness: UInt64 = 5_000_000

    init(period: Duration, start: UInt64) {
        self.period = max(MonotonicTime.nanoseconds(period), 1)
        self.nextDeadline = start
        self.timer = Sleep(deadline: start)
    }

    public mutating func pollNext(_ context: inout Context) -> Poll<Int?> {
        // Behind with `.burst`, tick after tick is ready at once.
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        guard case .ready = timer.poll(&context) else { return Budget.refundingIfPending(.pending) }
        let index = nextIndex
        let due = nextDeadline
        var following = due &+ period
        nextIndex += 1
        let now = MonotonicTime.now()
        switch missedTickBehavior {
        case .skip where now > due &+ Self.lateness:
            // Fell behind: skip to the first tick still in the future.
            let missed = (now - due) / period
            following = due &+ (missed + 1) &* period
            nextIndex = index + Int(missed) + 1
        case .delay where now > due &+ Self.lateness:
            following = now &+ period
        case .skip, .burst, .delay:
            break  // on time; or, with `.burst`, the next is due already and taken at once
        }
        arm(at: following)
        return .ready(index)
    }

    /// Moves the schedule so that the next tick is due one period from now
    /// (Tokio's `reset`); the indices go on from where they were. A task
    /// waiting for the tick (a poll returned pending) is woken by the new one.
    public mutating func reset() {
        arm(at: MonotonicTime.now() &+ period)
    }

    /// Replaces the timer with one for `deadline`, armed at the next poll;
    /// the task waiting on the one it replaces is woken, once that one is
    /// disarmed on its loop, to make that poll (dropped silently, that timer
    /// took the task's waker with it, and the task slept for ever). Not armed
    /// here: `reset()` may run off the loop.
    private mutating func arm(at deadline: UInt64) {
        nextDeadline = deadline
        timer.armed?.wakesWhenDropped = true
        timer = Sleep(deadline: deadline)
    }
}

/// What an ``Interval`` does with ticks its consumer was too late for.
public enum MissedTickBehavior: Sendable, Equatable {
    /// The overdue tick fires once, at once; the next is the next tick of the
    /// schedule still in the future (the indices skip the missed ones).
    /// Counted from a tick taken more than 5 ms after it was due.
    case skip
    /// Every missed tick fires, back to back, until the schedule is caught up.
    case burst
    /// The schedule moves: after a tick taken more than 5 ms after it was
    /// due (Tokio's threshold), the next is due a period after it; each tick
    /// is then at least a period after a late one.
    case delay
}

/// A stream that ticks every `period` (at least a nanosecond), starting now.
public func interval(every period: Duration) -> Interval {
    Interval(period: period, start: MonotonicTime.now())
}

/// A stream that ticks every `period` (at least a nanosecond), the first tick
/// at `start` (Tokio's `interval_at`); a start in the past counts as now.
public func interval(every period: Duration, startingAt start: ContinuousClock.Instant) -> Interval {
    Interval(period: period, start: max(MonotonicTime.deadline(at: start), MonotonicTime.now()))
}
