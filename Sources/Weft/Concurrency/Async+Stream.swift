/// The async face of poll streams (Stream/): an `AsyncSequence` whose
/// iterator awaits each element through the bridge.

/// A poll-based stream as an `AsyncSequence`. See ``PollStream/values``.
public struct PollStreamValues<Base: PollStream>: AsyncSequence {
    /// The stream's elements.
    public typealias Element = Base.Element
    let base: Base
    /// The loop the stream belongs to, if it is bound to one.
    let loop: EventLoop?

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: base, loop: loop)
    }

    /// Takes elements by polling the stream on its loop.
    public struct Iterator: AsyncIteratorProtocol {
        var base: Base?
        let loop: EventLoop?

        /// The next element, or `nil` at the end.
        ///
        /// **Cancellation:** throws `CancellationError`; the stream is dropped and
        /// the sequence ends.
        public mutating func next() async throws -> Base.Element? {
            guard let stream = base.take() else { return nil }
            let (element, rest) = try await value(transferring: UnsafeTransfer(value: stream.next()), on: loop).value
            if element != nil { base = rest }
            return element
        }
    }
}

extension PollStream {
    /// This stream as an `AsyncSequence`:
    /// `for try await tick in interval(every: .seconds(1)).values { ... }`.
    public var values: PollStreamValues<Self> {
        PollStreamValues(base: self, loop: nil)
    }
}
