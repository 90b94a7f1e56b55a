/// A stream that lets at most one element through per period: after each
/// element it waits `period` before polling the stream again. See
/// ``PollStream/throttle(every:)``.
///
/// Elements are delayed, never dropped: a stream that produces faster fills up
/// (or is held back by) whatever it reads from. The stream is not polled during
/// the pause, so a lazy stream (one that starts its next element only when
/// polled) adds its own time to the period.
///
/// **Cancellation:** dropping it drops the stream and disarms its timer; no
/// element is lost (none is held between polls).
public struct ThrottleStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    /// Armed after each element; the stream is not polled until it fires.
    @usableFromInline var pause: Sleep?
    @usableFromInline let period: Duration

    @inlinable
    init(base: Base, period: Duration) {
        self.base = base
        self.period = period
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        if pause != nil {
            guard case .ready = pause!.poll(&context) else { return .pending }
            pause = nil
        }
        guard case .ready(let next) = base.pollNext(&context) else { return .pending }
        if next != nil { pause = sleepFuture(for: period) }
        return .ready(next)
    }
}

/// A stream whose elements each have a time limit: `.failure(TimedOut)` when
/// the next element takes longer than `limit` to come (the stream is still
/// read afterwards, with a fresh limit). See ``PollStream/timeout(perItem:)``.
///
/// The limit runs from the first poll that finds no element ready.
///
/// **Cancellation:** dropping it drops the stream and disarms its timer; no
/// element is lost (none is held between polls).
public struct TimeoutStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var deadline: Sleep?
    @usableFromInline let limit: Duration

    @inlinable
    init(base: Base, limit: Duration) {
        self.base = base
        self.limit = limit
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Result<Base.Element, TimedOut>?> {
        if case .ready(let next) = base.pollNext(&context) {
            deadline = nil
            return .ready(next.map { .success($0) })
        }
        if deadline == nil { deadline = sleepFuture(for: limit) }
        guard case .ready = deadline!.poll(&context) else { return .pending }
        deadline = nil
        return .ready(.failure(TimedOut(limit: limit)))
    }
}

extension PollStream {
    /// A stream of the same elements, at most one per `period`: after each
    /// element the stream is left alone for `period` (tokio-stream's `throttle`).
    @inlinable
    public func throttle(every period: Duration) -> ThrottleStream<Self> {
        ThrottleStream(base: self, period: period)
    }

    /// A stream of `.success(element)`, with a `.failure(TimedOut)` each time
    /// the next element takes longer than `limit` (tokio-stream's `timeout`);
    /// it ends when the stream ends.
    @inlinable
    public func timeout(perItem limit: Duration) -> TimeoutStream<Self> {
        TimeoutStream(base: self, limit: limit)
    }
}
