/// Weft's time as a Swift `Clock`, for code written against `Clock`:
/// `Task.sleep(for:clock:)`, swift-async-algorithms' `debounce` and the like.
///
/// It reads the time of the calling thread: on a deterministic runtime's
/// thread (``RuntimeOptions/deterministic(seed:)``: the runtime runs there, or
/// outside every `block(on:)`, is the newest one alive there), its virtual clock, which moves only when the runtime jumps to its next
/// timer or ``Runtime/advanceTime(by:)`` moves it, so an hour-long sleep in a
/// test takes microseconds; elsewhere, the monotonic clock
/// (`CLOCK_MONOTONIC`, as `uv_hrtime`). Its sleeps are Weft sleeps: on the
/// loop running the calling task (else ``LoopThread/shared``), on its timer
/// wheel, to the millisecond.
///
/// ```swift
/// let runtime = try Runtime(options: .deterministic(seed: 7))
/// try runtime.block(on: AsyncFuture {
///     try? await Task.sleep(for: .seconds(3600), clock: WeftClock())  // returns at once
/// })
/// ```
///
/// Instants are only comparable on one thread's clock: one read on a
/// deterministic runtime's thread and one read elsewhere are on different
/// time lines.
public struct WeftClock: Clock {
    /// A point on Weft's time line, in nanoseconds.
    public struct Instant: InstantProtocol, Hashable, Sendable {
        let nanoseconds: Int64

        /// Saturating at the ends of the time line (about 292 years either
        /// way): wrapped, `.seconds(Int64.max)` from now was a second ago.
        public func advanced(by duration: Duration) -> Instant {
            let (seconds, attoseconds) = duration.components
            let (whole, wholeOverflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let (sum, sumOverflow) = nanoseconds.addingReportingOverflow(whole)
            let (total, fractionOverflow) = sum.addingReportingOverflow(attoseconds / 1_000_000_000)
            guard !wholeOverflow && !sumOverflow && !fractionOverflow else {
                // The sign of the whole duration: one under a second
                // (`seconds` 0) may be negative too.
                return Instant(nanoseconds: duration < .zero ? .min : .max)
            }
            return Instant(nanoseconds: total)
        }

        /// Saturating, as ``advanced(by:)``.
        public func duration(to other: Instant) -> Duration {
            let (difference, overflow) = other.nanoseconds.subtractingReportingOverflow(nanoseconds)
            guard !overflow else { return other.nanoseconds > nanoseconds ? .seconds(Int64.max) : .seconds(Int64.min) }
            return .nanoseconds(difference)
        }

        public static func < (lhs: Instant, rhs: Instant) -> Bool {
            lhs.nanoseconds < rhs.nanoseconds
        }
    }

    public init() {}

    public var now: Instant {
        Instant(nanoseconds: Int64(bitPattern: MonotonicTime.now()))
    }

    /// Weft's timers fire to the millisecond.
    public var minimumResolution: Duration { .milliseconds(1) }

    /// Suspends until `deadline` with a Weft sleep; `tolerance` is not used.
    /// Throws `CancellationError` when the task is cancelled. How long is
    /// read on the caller's executor, where `deadline` was read.
    nonisolated(nonsending)
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await Weft.sleep(for: now.duration(to: deadline))
    }
}
