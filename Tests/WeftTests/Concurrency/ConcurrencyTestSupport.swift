import Dispatch
import Synchronization
import Testing
import Weft

// Helpers for the Swift-concurrency bridge tests (Tests/WeftTests/Concurrency).
// Everything here uses Weft's public API only.

/// Parent of the concurrency-bridge suites (so `swift test --filter Concurrency`
/// selects them); the timing-sensitive ones live in `ConcurrencyBridgeTiming`.
@Suite("Swift concurrency bridge") struct ConcurrencyBridge {}

extension TimingSensitive {
    /// Concurrency-bridge suites that measure time or load both cores: serialized
    /// with the other timing-sensitive suites.
    @Suite("Swift concurrency bridge: timing and stress") struct ConcurrencyBridgeTiming {}
}

/// Thrown by ``awaitWithin(_:_:sourceLocation:)`` when the deadline wins.
struct DeadlineExceeded: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "did not finish within \(limit)" }
}

/// Resumes a continuation exactly once, whoever comes first.
private final class FirstWins<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>

    init(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(returning value: Value) {
        continuation.locked { $0.take() }?.resume(returning: value)
    }
}

/// The result of `task`, but a bug that makes it hang fails the test instead of
/// hanging the suite: after `limit` an issue is recorded, `task` is cancelled and
/// ``DeadlineExceeded`` is thrown.
///
/// The wait does not depend on `task` reacting to cancellation (a task group
/// would wait for it): the first of "task finished" and "deadline passed"
/// resumes the caller; a hung task is left behind.
@discardableResult
func awaitWithin<T: Sendable>(
    _ limit: Duration,
    _ task: Task<T, any Error>,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> T {
    let watchers = Mutex<[Task<Void, Never>]>([])
    let outcome: Result<T, any Error>? = await withCheckedContinuation { continuation in
        let once = FirstWins<Result<T, any Error>?>(continuation)
        let finished = Task { once.resume(returning: await task.result) }
        let deadline = Task {
            try? await Task.sleep(for: limit)
            once.resume(returning: nil)
        }
        watchers.locked { $0 = [finished, deadline] }
    }
    for watcher in watchers.locked({ $0 }) { watcher.cancel() }
    guard let outcome else {
        task.cancel()
        Issue.record("a task did not finish within \(limit): probably hung", sourceLocation: sourceLocation)
        throw DeadlineExceeded(limit: limit)
    }
    return try outcome.get()
}

/// `awaitWithin` for a non-throwing task.
@discardableResult
func awaitWithin<T: Sendable>(
    _ limit: Duration,
    _ task: Task<T, Never>,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> T {
    try await awaitWithin(limit, Task<T, any Error> { await task.value }, sourceLocation: sourceLocation)
}

/// Whether `result` is a failure with `CancellationError`.
func isCancellation<T>(_ result: Result<T, any Error>) -> Bool {
    if case .failure(let error) = result { return error is CancellationError }
    return false
}

/// A one-shot flag that a poll future can wait on, set from any thread.
final class Latch: Sendable {
    private let state = Mutex<(isSet: Bool, waker: Waker?)>((false, nil))

    init() {}

    var isSet: Bool { state.locked { $0.isSet } }

    func set() {
        state.locked { state -> Waker? in
            state.isSet = true
            return state.waker.take()
        }?.wake()
    }

    /// A future ready once the latch is set.
    func wait() -> PollFn<Void> {
        pollFn { (context: inout Context) -> Poll<Void> in
            self.state.locked { state -> Poll<Void> in
                if state.isSet { return .ready(()) }
                state.waker = context.waker
                return .pending
            }
        }
    }
}

/// A connected pair of TCP streams on the loop running the calling task (call
/// it from inside a task on that loop), plus the listener that accepted.
func connectedPairOnThisLoop() async throws -> (listener: TCPListener, client: TCPStream, server: TCPStream) {
    let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
    let address = try listener.localAddress
    let (client, server) = try await value(of: join(TCPStream.connectFuture(to: address), listener.acceptFuture()))
    return (listener, try client.get(), try server.get())
}

/// Runs `body` with a new `LoopThread` and a connected pair of TCP streams on
/// it (with the listener that accepted), then closes all three and checks that
/// the scenario left nothing open on the loop (see
/// ``NetTest/expectNothingLeftOpen(on:handlesBefore:within:sourceLocation:)``),
/// and shuts the loop down.
func withConnectedPair<T>(
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (_ loop: LoopThread, _ listener: TCPListener, _ client: TCPStream, _ server: TCPStream) async throws -> T
) async throws -> T {
    let loop = try LoopThread()
    defer { loop.shutdown() }
    let handlesBefore = try await NetTest.handleBaseline(on: loop, sourceLocation: sourceLocation)
    let (listener, client, server) = try await awaitWithin(.seconds(20), loop.spawn { try await connectedPairOnThisLoop() },
                                                           sourceLocation: sourceLocation)
    defer { listener.close() }
    let result = try await body(loop, listener, client, server)
    client.close()
    server.close()
    listener.close()
    try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore, sourceLocation: sourceLocation)
    return result
}

/// The outcome of `body` as a `Result`.
func outcome<T>(of body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

/// `loop.shutdown()` on a thread of its own, awaited: shutdown blocks its caller
/// (up to a second while spawned tasks finish), which must not take one of the
/// two cooperative threads away from the tests running in parallel (nor a
/// Dispatch worker: on Linux they share a pool). Returns how long it took.
@discardableResult
func shutDownOffThePool(_ loop: LoopThread) async -> Duration {
    await timedOffThePool { loop.shutdown() }
}

/// `group.shutdown()` on a thread of its own, awaited (see `shutDownOffThePool(_: LoopThread)`).
@discardableResult
func shutDownOffThePool(_ group: LoopGroup) async -> Duration {
    await timedOffThePool { group.shutdown() }
}

/// Runs `body` on a thread of its own and returns how long it took.
private func timedOffThePool(_ body: @escaping @Sendable () -> Void) async -> Duration {
    await withCheckedContinuation { (continuation: CheckedContinuation<Duration, Never>) in
        _ = ForeignThread {
            let start = ContinuousClock.now
            body()
            continuation.resume(returning: ContinuousClock.now - start)
        }
    }
}

/// Returns once `condition` holds, or after 20 s (the caller's checks then
/// fail). Sleeps between checks, so it holds no cooperative thread.
func waitUntil(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while !condition(), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// Suspends for `duration` on a Dispatch timer, ignoring cancellation.
func nap(_ duration: Duration) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let (seconds, attoseconds) = duration.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
            continuation.resume()
        }
    }
}

/// How a waiting task ended: with `CancellationError` or not, and when, timed on
/// the task's own thread (a loop thread for spawned tasks), so that a busy
/// cooperative pool does not count against the library.
struct Ending: Sendable {
    let cancelled: Bool
    let at: ContinuousClock.Instant
    let outcome: String
}

/// Cancels `task`, which reports how it ended (see ``ending(_:)``), and checks
/// that it ended with `CancellationError` within 5 s of the cancel. Every
/// caller's task would otherwise wait far longer (an hour-long sleep or
/// interval, a read or a spin that never ends), so the loose bound, which a
/// loaded machine or a sanitizer run does not reach, still catches a
/// cancellation that is not seen.
func expectCancelledPromptly(_ task: Task<Ending, any Error>, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    try await expectCancelledPromptly(cancel: task.cancel, sourceLocation: sourceLocation) {
        try await awaitWithin(.seconds(20), task, sourceLocation: sourceLocation)
    }
}

/// ``expectCancelledPromptly(_:sourceLocation:)`` for a non-throwing task.
func expectCancelledPromptly(_ task: Task<Ending, Never>, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    try await expectCancelledPromptly(cancel: task.cancel, sourceLocation: sourceLocation) {
        try await awaitWithin(.seconds(20), task, sourceLocation: sourceLocation)
    }
}

private func expectCancelledPromptly(
    cancel: () -> Void, sourceLocation: SourceLocation, ended: () async throws -> Ending
) async throws {
    let cancelledAt = ContinuousClock.now
    cancel()
    let end = try await ended()
    #expect(end.cancelled, "\(end.outcome)", sourceLocation: sourceLocation)
    #expect(end.at - cancelledAt < .seconds(5),
            "cancellation took \((end.at - cancelledAt).milliseconds) ms", sourceLocation: sourceLocation)
}

/// Runs `body` and reports how it ended.
func ending<T>(_ body: () async throws -> T) async -> Ending {
    do {
        let value = try await body()
        return Ending(cancelled: false, at: .now, outcome: "returned \(value)")
    } catch {
        return Ending(cancelled: error is CancellationError, at: .now, outcome: "threw \(error)")
    }
}
