/// The async twins of the time futures (Time/): each awaits its poll future
/// through the bridge, by the one rule every async twin follows
/// (docs/ARCHITECTURE.md, "The Swift concurrency bridge"): on the current loop
/// (or ``LoopThread/shared``); cancelling the Swift task drops that future and
/// throws `CancellationError`.

/// Suspends for `duration` on the loop's timer wheel.
///
/// **Cancellation:** cancel-safe; the timer is disarmed and `CancellationError` thrown.
nonisolated(nonsending)
public func sleep(for duration: Duration) async throws(CancellationError) {
    _ = try await value(transferring: UnsafeTransfer(value: sleepFuture(for: duration)))
}

/// Suspends until `deadline` on the loop's timer wheel; a deadline in the past
/// returns at once.
///
/// **Cancellation:** cancel-safe; the timer is disarmed and `CancellationError` thrown.
nonisolated(nonsending)
public func sleep(until deadline: ContinuousClock.Instant) async throws(CancellationError) {
    _ = try await value(transferring: UnsafeTransfer(value: sleepFuture(until: deadline)))
}

/// Runs `operation` with a time limit: `.success` with its result, or
/// `.failure(TimedOut)` after cancelling it when time runs out first.
nonisolated(nonsending)
public func timeout<T: Sendable>(
    _ limit: Duration, _ operation: @escaping @Sendable () async -> T
) async throws(CancellationError) -> Result<T, TimedOut> {
    try await value(transferring: UnsafeTransfer(value: timeoutFuture(limit, AsyncFuture(operation)))).value
}
