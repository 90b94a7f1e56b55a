/// The error a ``Timeout`` yields when its time ran out first.
public struct TimedOut: Error, Sendable, Equatable, CustomStringConvertible {
    /// The time limit that passed.
    public let limit: Duration

    @usableFromInline
    init(limit: Duration) {
        self.limit = limit
    }

    public var description: String { "timed out after \(limit)" }
}

/// A future that runs another future with a time limit.
///
/// Yields `.success(output)` if the inner future finishes first, or
/// `.failure(TimedOut)` if the time runs out first; then the inner future is
/// dropped (which cancels it). If both are ready at the same poll, the inner
/// future wins.
///
/// **Cancellation:** dropping the timeout drops the inner future and the timer.
public struct Timeout<Inner: Future>: Future {
    @usableFromInline var inner: Inner?
    @usableFromInline var timer: Sleep
    @usableFromInline let limit: Duration

    @inlinable
    init(inner: Inner, limit: Duration) {
        self.inner = inner
        self.limit = limit
        self.timer = sleepFuture(for: limit)
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Inner.Output, TimedOut>> {
        guard inner != nil else { preconditionFailure("Timeout polled after it completed") }
        let hadBudget = !Budget.isSpent
        if case .ready(let value) = inner!.poll(&context) {
            inner = nil
            return .ready(.success(value))
        }
        // An inner future that spent the task's whole budget (draining a
        // channel kept full) left none for a timer already due at its first
        // poll, which takes a unit: at every poll, so the limit never came.
        // Its timer is then polled unconstrained (Tokio's fix, #4314).
        let fired = if hadBudget && Budget.isSpent {
            Budget.unconstrained { timer.poll(&context) }
        } else {
            timer.poll(&context)
        }
        if case .ready = fired {
            inner = nil
            return .ready(.failure(TimedOut(limit: limit)))
        }
        return .pending
    }
}

/// Runs `future` with a time limit of `limit` (counted from this call).
///
/// ```swift
/// let runtime = try Runtime()
/// let connect = TCPStream.connectFuture(to: try SocketAddress("127.0.0.1:9"))
/// switch try runtime.block(on: timeoutFuture(.seconds(2), connect)) {
/// case .success(.success(let stream)): stream.close()
/// case .success(.failure(let error)): print(error)   // refused, unreachable, ...
/// case .failure(let timedOut): print(timedOut)       // the connect was dropped
/// }
/// ```
@inlinable
public func timeoutFuture<F: Future>(_ limit: Duration, _ future: F) -> Timeout<F> {
    Timeout(inner: future, limit: limit)
}
