import CLibUV
import CWeftSupport
import Synchronization

/// Weft's internal clock: nanoseconds of `uv_hrtime()` (CLOCK_MONOTONIC), or of
/// the thread's ``VirtualClock`` while a deterministic runtime owns the thread.
/// libuv's millisecond timers are an implementation detail of ``TimerDriver``.
enum MonotonicTime {
    /// A deadline far enough away to never fire, used for enormous durations.
    static let distantFuture: UInt64 = UInt64.max / 2

    static func now() -> UInt64 {
        if let virtual = weft_virtual_clock() { return virtual.pointee }
        return uv_hrtime()
    }

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

    /// The monotonic deadline matching a `ContinuousClock` instant: one clock
    /// read, converted with the cached offset between the two clocks.
    static func deadline(at instant: ContinuousClock.Instant) -> UInt64 {
        let continuousNow = ContinuousClock.now
        let remaining = instant - continuousNow
        if remaining <= .zero { return 0 }
        let delta = nanoseconds(remaining)
        if delta >= distantFuture { return distantFuture }
        if let virtual = weft_virtual_clock() { return virtual.pointee &+ delta }
        return ClockOffset.monotonic(at: continuousNow) &+ delta
    }
}

/// The offset from `ContinuousClock` (CLOCK_BOOTTIME) to `uv_hrtime`
/// (CLOCK_MONOTONIC): constant except across a system suspend, so it is
/// re-measured at most once per second instead of reading both clocks for
/// every `sleep(until:)`.
private enum ClockOffset {
    private static let offset = Atomic<Int64>(0)
    private static let measuredAt = Atomic<Int64>(Int64.min)

    /// Never measured is its own case (`Int64.min`), not left to the
    /// subtraction: a first call whose instant came after `reference` was
    /// set wrapped it round, skipped the measurement and, with no other
    /// thread's offset stored yet, used 0, a deadline long past (a sleep
    /// that ended at once). The offset is stored before the instant it was
    /// measured at, releasing, and read after it, acquiring, so a thread
    /// that finds a measurement finds its offset.
    static func monotonic(at instant: ContinuousClock.Instant) -> UInt64 {
        let continuous = nanoseconds(since: instant)
        let measured = measuredAt.load(ordering: .acquiring)
        if measured == Int64.min || continuous &- measured > 1_000_000_000 {
            let measuredOffset = Int64(bitPattern: uv_hrtime()) &- continuous
            offset.store(measuredOffset, ordering: .relaxed)
            measuredAt.store(continuous, ordering: .releasing)
            return UInt64(bitPattern: continuous &+ measuredOffset)
        }
        return UInt64(bitPattern: continuous &+ offset.load(ordering: .relaxed))
    }

    /// `instant` as nanoseconds on the continuous clock's own scale.
    private static func nanoseconds(since instant: ContinuousClock.Instant) -> Int64 {
        let (seconds, attoseconds) = (instant - reference).components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }

    private static let reference = ContinuousClock.now
}
