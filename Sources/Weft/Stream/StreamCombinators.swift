/// A stream whose elements are transformed by a closure. See ``PollStream/map(_:)``.
///
/// **Cancellation:** dropping it drops the base stream.
public struct MapStream<Base: PollStream, Element>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline let transform: (Base.Element) -> Element

    @inlinable
    init(base: Base, transform: @escaping (Base.Element) -> Element) {
        self.base = base
        self.transform = transform
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Element?> {
        base.pollNext(&context).map { $0.map(transform) }
    }
}

/// A stream of the base stream's elements that pass a test. See
/// ``PollStream/filter(_:)``.
///
/// A run of rejected elements is consumed within one poll.
/// **Cancellation:** dropping it drops the base stream.
public struct FilterStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline let isIncluded: (Base.Element) -> Bool

    @inlinable
    init(base: Base, isIncluded: @escaping (Base.Element) -> Bool) {
        self.base = base
        self.isIncluded = isIncluded
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        while true {
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(nil)
            case .ready(let element?): if isIncluded(element) { return .ready(element) }
            }
        }
    }
}

/// A future that folds every element of a stream into one value. See
/// ``PollStream/fold(_:_:)``.
///
/// **Cancellation:** dropping it drops the stream and the partial result.
public struct Fold<Base: PollStream, Result>: Future {
    @usableFromInline var base: Base
    @usableFromInline var partial: Result?
    @usableFromInline let combine: (Result, Base.Element) -> Result

    @inlinable
    init(base: Base, initial: Result, combine: @escaping (Result, Base.Element) -> Result) {
        self.base = base
        self.partial = initial
        self.combine = combine
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result> {
        while true {
            switch base.pollNext(&context) {
            case .pending:
                return .pending
            case .ready(nil):
                guard let result = partial.take() else { preconditionFailure("Fold polled after it completed") }
                return .ready(result)
            case .ready(let element?):
                partial = combine(partial.take()!, element)
            }
        }
    }
}

extension PollStream {
    /// A stream of `transform` applied to each element.
    @inlinable
    public func map<T>(_ transform: @escaping (Element) -> T) -> MapStream<Self, T> {
        MapStream(base: self, transform: transform)
    }

    /// A stream of the elements for which `isIncluded` is true.
    @inlinable
    public func filter(_ isIncluded: @escaping (Element) -> Bool) -> FilterStream<Self> {
        FilterStream(base: self, isIncluded: isIncluded)
    }

    /// A future that combines every element into `initial`, ready when the
    /// stream ends.
    @inlinable
    public func fold<Result>(
        _ initial: Result, _ combine: @escaping (Result, Element) -> Result
    ) -> Fold<Self, Result> {
        Fold(base: self, initial: initial, combine: combine)
    }

    /// A stream of at most the first `count` elements. A negative `count`
    /// traps (as `Sequence.prefix(_:)`'s does).
    @inlinable
    public func prefix(_ count: Int) -> PrefixStream<Self> {
        precondition(count >= 0, "prefix's count must not be negative")
        return PrefixStream(base: self, remaining: count)
    }
}

/// The first elements of a stream. See ``PollStream/prefix(_:)``.
///
/// **Cancellation:** dropping it drops the base stream.
public struct PrefixStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var remaining: Int

    @inlinable
    init(base: Base, remaining: Int) {
        self.base = base
        self.remaining = remaining
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        guard remaining > 0 else { return .ready(nil) }
        let next = base.pollNext(&context)
        if case .ready(.some) = next { remaining -= 1 }
        return next
    }
}
