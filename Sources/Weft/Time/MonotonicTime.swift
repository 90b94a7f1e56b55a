import CLibUV

/// Weft's internal clock: nanoseconds of `uv_hrtime()` (CLOCK_MONOTONIC).
/// libuv's millisecond timers are an implementation detail of ``TimerDriver``.
enum MonotonicTime {
    /// A deadline far enough away to never fire, used for enormous durations.
    static let distantFuture: UInt64 = UInt64.max / 2

    static func now() -> UInt64 { uv_hrtime() }

    /// `duration` in whole nanoseconds, rounded up; negative durations are zero
    /// and durations past a century saturate.
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        if seconds >= 3_155_760_000 { return distantFuture }  // a century
        let fraction = (UInt64(attoseconds) + 999_999_999) / 1_000_000_000
        return UInt64(seconds) * 1_000_000_000 + fraction
    }

    /// The deadline `duration` from now; 0 (always passed) for a zero or
    /// negative duration, so such a sleep completes at its first poll.
    static func deadline(after duration: Duration) -> UInt64 {
        let delta = nanoseconds(duration)
        if delta == 0 { return 0 }
        return delta >= distantFuture ? distantFuture : now() + delta
    }

    /// The monotonic deadline matching a `ContinuousClock` instant.
    static func deadline(at instant: ContinuousClock.Instant) -> UInt64 {
        deadline(after: instant - ContinuousClock.now)
    }
}
