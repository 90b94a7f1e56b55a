/// A future that completes at a deadline.
///
/// Created by ``sleepFuture(for:)`` or ``sleepFuture(until:)``. The deadline is fixed when the
/// sleep is created (as in Tokio); the timer is armed only at the first poll
/// (docs/ARCHITECTURE.md, invariant 1). It never completes early: libuv's millisecond clock is rounded
/// up, so it completes at most about a millisecond late on an idle loop.
///
/// **Cancellation:** dropping a pending sleep disarms its timer at once; its
/// waker is never called afterwards. Dropped on another thread than its
/// loop's (handed out of the loop by an await), it is disarmed on the loop when
/// the loop next runs, and if it comes due before then, its waker is called
/// once. Recreating it with the same deadline loses nothing, so it is
/// cancel-safe; polled on another loop than the one that armed it, it is
/// armed again there, for the same deadline.
///
/// A sleep whose deadline has passed at its first poll takes a unit of the
/// task's ``Budget`` (as Tokio's does): a loop of zero sleeps yields the loop
/// once the budget is spent, instead of holding it for ever.
public struct Sleep: Future {
    /// The deadline in `uv_hrtime` nanoseconds.
    let deadline: UInt64
    /// The armed timer, once polled.
    var armed: ArmedTimer?

    init(deadline: UInt64) {
        self.deadline = deadline
    }

    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        if let armed {
            if armed.loop.isRunningOnCallingThread {
                if armed.loop.timers.hasFired(armed.node) { return .ready(()) }
                armed.loop.timers.register(context.waker, for: armed.node)
                return .pending
            }
            // Polled on another loop than the one that armed it: armed again
            // here, for the same deadline; the old timer is disarmed on its own
            // loop, whose thread alone may touch it.
            self.armed = nil
        }
        guard let loop = EventLoop.current else {
            preconditionFailure("Sleep polled outside a Weft runtime")
        }
        guard let node = loop.timers.schedule(deadline: deadline, waker: context.waker) else {
            return Budget.consume(orWaking: context.waker) ? .ready(()) : .pending
        }
        armed = ArmedTimer(loop: loop, node: node)
        return .pending
    }
}

/// A future that completes after `duration` (from now, not from the first poll).
/// A zero or negative duration completes at the first poll.
public func sleepFuture(for duration: Duration) -> Sleep {
    Sleep(deadline: MonotonicTime.deadline(after: duration))
}

/// A future that completes at `deadline`. A deadline in the past completes at the
/// first poll.
public func sleepFuture(until deadline: ContinuousClock.Instant) -> Sleep {
    Sleep(deadline: MonotonicTime.deadline(at: deadline))
}
