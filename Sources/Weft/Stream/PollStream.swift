/// An asynchronous sequence of values, polled like a future: the async book's
/// `Stream`. (Named so it does not clash with `Foundation.Stream`.)
///
/// `pollNext` returns `.ready(element)` for each value, `.ready(nil)` once the
/// stream has ended, and `.pending` after arranging a wake of `context.waker`
/// (the same contract as ``Future/poll(_:)``).
public protocol PollStream<Element> {
    /// The values the stream produces.
    associatedtype Element

    /// Attempts to take the next value.
    mutating func pollNext(_ context: inout Context) -> Poll<Element?>
}

/// The future returned by ``PollStream/next()``: the next element together with
/// the rest of the stream (a future cannot borrow the stream, so it owns it and
/// hands it back, like futures-rs's `StreamFuture`).
///
/// **Cancellation:** dropping it drops the stream it owns.
public struct NextElement<S: PollStream>: Future {
    @usableFromInline var stream: S?

    @inlinable
    init(_ stream: S) {
        self.stream = stream
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<(element: S.Element?, rest: S)> {
        guard stream != nil else { preconditionFailure("next() polled after it completed") }
        guard case .ready(let element) = stream!.pollNext(&context) else { return .pending }
        let rest = stream.take()!
        return .ready((element, rest))
    }
}

extension PollStream {
    /// A future of the next element (or `nil` at the end) and the rest of the stream.
    ///
    /// ```swift
    /// let runtime = try Runtime()
    /// let ticks = interval(every: .milliseconds(10))
    /// let (first, rest) = try runtime.block(on: ticks.next())   // tick 0, and the stream to read on
    /// let (second, _) = try runtime.block(on: rest.next())      // tick 1, 10 ms later
    /// ```
    @inlinable
    public func next() -> NextElement<Self> {
        NextElement(self)
    }
}
