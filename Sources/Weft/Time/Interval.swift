/// A stream of ticks at a fixed period, created by ``interval(every:)``.
///
/// Each element is the tick's index in the schedule: tick `n` is due at
/// `start + n × period`. The first tick (index 0) is ready at once.
///
/// **Missed ticks are skipped:** if the consumer falls behind by more than a
/// period, the overdue tick fires once, immediately, and the next one is the next
/// tick of the original schedule that is still in the future. The gap in indices
/// tells how many were skipped. (Tokio's default, "burst", would fire all missed
/// ticks back to back; skipping keeps a slow consumer from being flooded.)
///
/// **Cancellation:** dropping the interval (or a pending `next()`) disarms its
/// timer; no tick is lost by dropping a pending `next()` future.
public struct Interval: PollStream {
    let start: UInt64
    let period: UInt64
    var nextIndex: Int = 0
    var timer: Sleep

    init(period: Duration) {
        self.period = max(MonotonicTime.nanoseconds(period), 1)
        self.start = MonotonicTime.now()
        self.timer = Sleep(deadline: start)
    }

    public mutating func pollNext(_ context: inout Context) -> Poll<Int?> {
        guard case .ready = timer.poll(&context) else { return .pending }
        let index = nextIndex
        let now = MonotonicTime.now()
        var following = UInt64(index + 1)
        if start + following * period <= now {
            // Fell behind: skip to the first tick still in the future.
            following = (now - start) / period + 1
        }
        nextIndex = Int(following)
        timer = Sleep(deadline: start + following * period)
        return .ready(index)
    }
}

/// A stream that ticks every `period` (at least a nanosecond), starting now.
public func interval(every period: Duration) -> Interval {
    Interval(period: period)
}
