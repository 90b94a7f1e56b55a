/// A stream without its first elements. See ``PollStream/skip(_:)``.
///
/// **Cancellation:** dropping it drops the base stream; no element is lost
/// beyond those it skips (none is held between polls).
public struct SkipStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var remaining: Int

    @inlinable
    init(base: Base, count: Int) {
        precondition(count >= 0, "skip's count must not be negative")
        self.base = base
        self.remaining = count
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        while remaining > 0 {
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(nil)
            case .ready(.some): remaining -= 1
            }
        }
        return base.pollNext(&context)
    }
}

/// A stream that leaves out elements while a test holds, then passes every
/// element on. See ``PollStream/skip(while:)``.
///
/// **Cancellation:** dropping it drops the base stream; no element is lost
/// beyond those it skips (none is held between polls).
public struct SkipWhileStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    /// Nil once an element failed the test.
    @usableFromInline var predicate: ((Base.Element) -> Bool)?

    @inlinable
    init(base: Base, predicate: @escaping (Base.Element) -> Bool) {
        self.base = base
        self.predicate = predicate
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        guard let predicate else { return base.pollNext(&context) }
        while true {
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(nil)
            case .ready(let element?):
                if predicate(element) { continue }
                self.predicate = nil
                return .ready(element)
            }
        }
    }
}

/// A stream of elements while a test holds; it ends at the first element that
/// fails it. See ``PollStream/take(while:)``.
///
/// **Cancellation:** dropping it drops the base stream. The element that ended
/// it is dropped, and the base stream is not polled again.
public struct TakeWhileStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline let predicate: (Base.Element) -> Bool
    @usableFromInline var isDone = false

    @inlinable
    init(base: Base, predicate: @escaping (Base.Element) -> Bool) {
        self.base = base
        self.predicate = predicate
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        if isDone { return .ready(nil) }
        guard case .ready(let next) = base.pollNext(&context) else { return .pending }
        if let element = next, predicate(element) { return .ready(element) }
        isDone = true
        return .ready(nil)
    }
}

/// A stream of elements until a future finishes; then it ends. See
/// ``PollStream/take(until:)``.
///
/// Each poll polls the future first, so once it has finished no further element
/// is taken, even one the stream has ready.
///
/// **Cancellation:** dropping it drops the stream and the future. When the
/// future finishes, both are dropped at once: elements left in the stream are
/// lost (none taken from it is).
public struct TakeUntilStream<Base: PollStream, Stop: Future>: PollStream {
    @usableFromInline var base: Base?
    @usableFromInline var stop: Stop?

    @inlinable
    init(base: Base, stop: Stop) {
        self.base = base
        self.stop = stop
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        guard base != nil else { return .ready(nil) }
        if case .ready = stop!.poll(&context) {
            base = nil
            stop = nil
            return .ready(nil)
        }
        guard case .ready(let next) = base!.pollNext(&context) else { return .pending }
        if next == nil {
            base = nil
            stop = nil
        }
        return .ready(next)
    }
}

extension PollStream {
    /// A stream without the first `count` elements. A negative `count` traps
    /// (as `Sequence.dropFirst(_:)`'s does).
    @inlinable
    public func skip(_ count: Int) -> SkipStream<Self> {
        SkipStream(base: self, count: count)
    }

    /// A stream that leaves out elements while `predicate` is true of them,
    /// then yields the rest (futures-rs's `skip_while`).
    @inlinable
    public func skip(while predicate: @escaping (Element) -> Bool) -> SkipWhileStream<Self> {
        SkipWhileStream(base: self, predicate: predicate)
    }

    /// A stream of elements while `predicate` is true of them; it ends at the
    /// first that fails (futures-rs's `take_while`).
    @inlinable
    public func take(while predicate: @escaping (Element) -> Bool) -> TakeWhileStream<Self> {
        TakeWhileStream(base: self, predicate: predicate)
    }

    /// A stream of elements until `stop` finishes (futures-rs's `take_until`):
    /// a shutdown signal, a deadline.
    ///
    /// <!-- snippet: prelude: listening -->
    /// ```swift
    /// let connections = listener.incoming.take(until: shutdownSignal())   // ends on SIGINT or SIGTERM
    /// let ticks = try runtime.block(on: interval(every: .milliseconds(10)).take(until: sleepFuture(for: .milliseconds(55))).collect())
    /// ```
    @inlinable
    public func take<Stop: Future>(until stop: Stop) -> TakeUntilStream<Self, Stop> {
        TakeUntilStream(base: self, stop: stop)
    }
}
