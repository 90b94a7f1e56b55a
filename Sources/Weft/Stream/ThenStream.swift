/// A stream of the outputs of a future built from each element, one element at
/// a time (the async map). See ``PollStream/then(_:)``.
///
/// **Cancellation:** dropping it drops the stream and the future running for
/// the current element: that element is lost.
public struct ThenStream<Base: PollStream, Next: Future>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var running: Next?
    @usableFromInline let transform: (Base.Element) -> Next

    @inlinable
    init(base: Base, transform: @escaping (Base.Element) -> Next) {
        self.base = base
        self.transform = transform
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Next.Output?> {
        if running == nil {
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(nil)
            case .ready(let element?): running = transform(element)
            }
        }
        guard case .ready(let output) = running!.poll(&context) else { return .pending }
        running = nil
        return .ready(output)
    }
}

/// A stream of the non-`nil` results of a closure applied to each element. See
/// ``PollStream/filterMap(_:)``.
///
/// A run of `nil` results is consumed within one poll.
/// **Cancellation:** dropping it drops the base stream; no element is lost
/// (none is held between polls).
public struct FilterMapStream<Base: PollStream, Element>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline let transform: (Base.Element) -> Element?

    @inlinable
    init(base: Base, transform: @escaping (Base.Element) -> Element?) {
        self.base = base
        self.transform = transform
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Element?> {
        while true {
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(nil)
            case .ready(let element?): if let mapped = transform(element) { return .ready(mapped) }
            }
        }
    }
}

/// A stream of each element with its offset from the start. See
/// ``PollStream/enumerated()``.
///
/// **Cancellation:** dropping it drops the base stream; no element is lost
/// (none is held between polls).
public struct EnumeratedStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var offset = 0

    @inlinable
    init(base: Base) {
        self.base = base
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<(offset: Int, element: Base.Element)?> {
        guard case .ready(let next) = base.pollNext(&context) else { return .pending }
        guard let element = next else { return .ready(nil) }
        defer { offset += 1 }
        return .ready((offset, element))
    }
}

extension PollStream {
    /// A stream of the outputs of the future `transform` builds from each
    /// element, one element at a time, in order (futures-rs's `then`).
    @inlinable
    public func then<Next: Future>(_ transform: @escaping (Element) -> Next) -> ThenStream<Self, Next> {
        ThenStream(base: self, transform: transform)
    }

    /// A stream of `transform` applied to each element, leaving out `nil`s
    /// (Swift's `compactMap`; futures-rs's `filter_map`).
    @inlinable
    public func filterMap<T>(_ transform: @escaping (Element) -> T?) -> FilterMapStream<Self, T> {
        FilterMapStream(base: self, transform: transform)
    }

    /// A stream of pairs `(offset, element)`, the offset counting from zero
    /// (futures-rs's `enumerate`; named as Swift's `enumerated()`).
    @inlinable
    public func enumerated() -> EnumeratedStream<Self> {
        EnumeratedStream(base: self)
    }
}
