/// The elements of one stream, then those of another. See ``PollStream/chain(_:)``.
///
/// **Cancellation:** dropping it drops both streams (the first is dropped as
/// soon as it ends); no element is lost (none is held between polls).
public struct ChainStream<First: PollStream, Second: PollStream>: PollStream where First.Element == Second.Element {
    @usableFromInline var first: First?
    @usableFromInline var second: Second

    @inlinable
    init(first: First, second: Second) {
        self.first = first
        self.second = second
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<First.Element?> {
        if first != nil {
            guard case .ready(let next) = first!.pollNext(&context) else { return .pending }
            if let element = next { return .ready(element) }
            first = nil
        }
        return second.pollNext(&context)
    }
}

/// Pairs of elements, one from each of two streams; it ends when either ends.
/// See ``PollStream/zip(_:)``.
///
/// When one stream ends, an element already taken from the other, waiting
/// for its partner, is dropped: from a stream whose copies share their source
/// (a channel's receiver, a listener's `incoming`), it is lost to them too (as
/// futures-rs's and swift-async-algorithms' `zip`).
///
/// **Cancellation:** dropping it drops both streams and an element taken from
/// one while waiting for its partner from the other: that element is lost.
public struct ZipStream<A: PollStream, B: PollStream>: PollStream {
    @usableFromInline var a: A
    @usableFromInline var b: B
    @usableFromInline var aElement: A.Element?
    @usableFromInline var bElement: B.Element?
    @usableFromInline var isDone = false

    @inlinable
    init(a: A, b: B) {
        self.a = a
        self.b = b
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<(A.Element, B.Element)?> {
        if isDone { return .ready(nil) }
        if aElement == nil, case .ready(let next) = a.pollNext(&context) {
            guard let element = next else { return end() }
            aElement = element
        }
        if bElement == nil, case .ready(let next) = b.pollNext(&context) {
            guard let element = next else { return end() }
            bElement = element
        }
        guard aElement != nil, bElement != nil else { return .pending }
        return .ready((aElement.take()!, bElement.take()!))
    }

    @inlinable
    mutating func end() -> Poll<(A.Element, B.Element)?> {
        isDone = true
        aElement = nil
        bElement = nil
        return .ready(nil)
    }
}

/// The elements of two streams as they come, taking turns when both have one
/// ready; it ends when both have ended. See ``PollStream/merge(_:)``.
///
/// Fair: each poll starts with the stream that did not go first last time
/// (futures-rs's round robin), so a stream that is always ready gets every
/// other element, never all of them.
///
/// **Cancellation:** dropping it drops both streams; no element is lost (none
/// is held between polls).
public struct MergeStream<A: PollStream, B: PollStream>: PollStream where A.Element == B.Element {
    @usableFromInline var a: A
    @usableFromInline var b: B
    @usableFromInline var aEnded = false
    @usableFromInline var bEnded = false
    @usableFromInline var bFirst = false

    @inlinable
    init(a: A, b: B) {
        self.a = a
        self.b = b
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<A.Element?> {
        bFirst.toggle()
        if bFirst {
            if let element = pollB(&context) ?? pollA(&context) { return .ready(element) }
        } else {
            if let element = pollA(&context) ?? pollB(&context) { return .ready(element) }
        }
        return aEnded && bEnded ? .ready(nil) : .pending
    }

    @inlinable
    mutating func pollA(_ context: inout Context) -> A.Element? {
        guard !aEnded, case .ready(let next) = a.pollNext(&context) else { return nil }
        if next == nil { aEnded = true }
        return next
    }

    @inlinable
    mutating func pollB(_ context: inout Context) -> A.Element? {
        guard !bEnded, case .ready(let next) = b.pollNext(&context) else { return nil }
        if next == nil { bEnded = true }
        return next
    }
}

extension PollStream {
    /// A stream of this stream's elements, then `other`'s.
    @inlinable
    public func chain<Other: PollStream<Element>>(_ other: Other) -> ChainStream<Self, Other> {
        ChainStream(first: self, second: other)
    }

    /// A stream of pairs, one element of each stream; it ends when either ends,
    /// dropping an element taken from the other and waiting for its partner
    /// (see ``ZipStream``).
    @inlinable
    public func zip<Other: PollStream>(_ other: Other) -> ZipStream<Self, Other> {
        ZipStream(a: self, b: other)
    }

    /// A stream of the elements of both streams as they come, fairly
    /// interleaved when both are ready; it ends when both end.
    @inlinable
    public func merge<Other: PollStream<Element>>(_ other: Other) -> MergeStream<Self, Other> {
        MergeStream(a: self, b: other)
    }
}
