/// The elements of each stream a stream yields, one inner stream after the
/// other. See ``PollStream/flatten()`` and ``PollStream/flatMap(_:)``.
///
/// **Cancellation:** dropping it drops the outer stream and the inner stream
/// being read; that inner stream's remaining elements are lost.
public struct FlattenStream<Base: PollStream>: PollStream where Base.Element: PollStream {
    @usableFromInline var base: Base
    @usableFromInline var inner: Base.Element?

    @inlinable
    init(base: Base) {
        self.base = base
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element.Element?> {
        while true {
            if inner != nil {
                guard case .ready(let next) = inner!.pollNext(&context) else { return .pending }
                if let element = next { return .ready(element) }
                inner = nil
            }
            switch base.pollNext(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(nil)
            case .ready(let stream?): inner = stream
            }
        }
    }
}

/// A stream that may be polled after it ended: it then yields `nil` again
/// without polling the stream it wrapped, which is dropped when it ends. See
/// ``PollStream/fuse()``.
///
/// **Cancellation:** dropping it drops the wrapped stream if it has not ended;
/// no element is lost (none is held between polls).
public struct FuseStream<Base: PollStream>: PollStream {
    @usableFromInline var base: Base?

    @inlinable
    init(base: Base) {
        self.base = base
    }

    /// True once the wrapped stream ended.
    @inlinable
    public var isTerminated: Bool { base == nil }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        guard base != nil else { return .ready(nil) }
        guard case .ready(let next) = base!.pollNext(&context) else { return .pending }
        if next == nil { base = nil }
        return .ready(next)
    }
}

extension PollStream where Element: PollStream {
    /// A stream of the elements of each stream this stream yields, in turn.
    @inlinable
    public func flatten() -> FlattenStream<Self> {
        FlattenStream(base: self)
    }
}

extension PollStream {
    /// A stream of the elements of the stream `transform` makes of each
    /// element, one inner stream after the other.
    @inlinable
    public func flatMap<Inner: PollStream>(
        _ transform: @escaping (Element) -> Inner
    ) -> FlattenStream<MapStream<Self, Inner>> {
        FlattenStream(base: map(transform))
    }

    /// This stream, safe to poll after it ended (`nil` again, the stream not
    /// polled): see ``FuseStream``.
    @inlinable
    public func fuse() -> FuseStream<Self> {
        FuseStream(base: self)
    }
}
