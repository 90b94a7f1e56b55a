/// The async twins of the time futures (Time/): each awaits its poll future
/// through the bridge, by the one rule every async twin follows
/// (docs/ARCHITECTURE.md, "The Swift concurrency bridge"): on the current loop
/// (or ``LoopThread/shared``); cancelling the Swift task drops that future and
/// throws `CancellationError`.
///
/// Each future is made where it is polled (`lazy`), so that its deadline is
/// on the time line of the loop that arms it: made on the caller's thread, it
/// read the clock of a deterministic runtime merely alive there, and the
/// shared loop, on real time, took an hour-long virtual sleep as long past
/// (or a short one as most of a thousand seconds away).

/// Suspends for `duration` on the loop's timer wheel; zero or less returns
/// at once.
///
/// **Cancellation:** cancel-safe; the timer is disarmed and `CancellationError`
/// thrown. A task already cancelled throws at once, whatever the duration
/// (as `Task.sleep`): a loop of zero sleeps still ends when its task is
/// cancelled.
nonisolated(nonsending)
public func sleep(for duration: Duration) async throws(CancellationError) {
    if Task.isCancelled { throw CancellationError() }
    _ = try await value(transferring: UnsafeTransfer(value: lazy { sleepFuture(for: duration) }))
}

/// Suspends until `deadline` on the loop's timer wheel; a deadline in the past
/// returns at once.
///
/// **Cancellation:** as ``sleep(for:)``.
nonisolated(nonsending)
public func sleep(until deadline: ContinuousClock.Instant) async throws(CancellationError) {
    if Task.isCancelled { throw CancellationError() }
    _ = try await value(transferring: UnsafeTransfer(value: lazy { sleepFuture(until: deadline) }))
}

/// Runs `operation` with a time limit and returns its result; when time runs
/// out first, cancels it and throws ``TimedOut``. An error `operation` throws
/// is rethrown.
///
/// `operation` runs as a Swift task that prefers the calling task's loop (or
/// ``LoopThread/shared`` when called off any loop): work that holds a thread
/// (a long computation, a blocking call) holds that loop's, and every task
/// on it waits. Hand such work to ``spawnBlocking(_:)``.
///
/// **Cancellation:** cancelling the calling task cancels `operation` and
/// throws `CancellationError`.
///
/// **Not cancel-safe for what `operation` consumes:** `operation` runs as a
/// Swift task of its own, so time can run out between its finishing and this
/// call's seeing it; its result is then dropped. An `operation` that takes
/// something (a channel's `receive()`, an accepted connection) can lose it
/// that way. Await a cancel-safe poll future with a limit instead, whose
/// result is never taken unless it is returned:
/// `try await value(of: timeoutFuture(limit, receiver.next()))`.
nonisolated(nonsending)
public func timeout<T: Sendable>(
    _ limit: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    // The operation runs as a task of its own, which does not inherit this
    // one's cancellation: in a task cancelled already, it ran and its value
    // came back. As `sleep`: a task cancelled already throws at once.
    if Task.isCancelled { throw CancellationError() }
    let attempt = AsyncFuture { () async -> Result<T, any Error> in
        do { return .success(try await operation()) } catch { return .failure(error) }
    }
    return try await value(transferring: UnsafeTransfer(value: lazy { timeoutFuture(limit, attempt) })).value.get().get()
}
