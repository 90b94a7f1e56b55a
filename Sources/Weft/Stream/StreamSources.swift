/// A stream whose `pollNext` is a closure (futures-rs's `poll_fn` for streams).
/// See ``pollStreamFn(_:)``.
///
/// **Cancellation:** dropping it drops the closure and whatever it captured.
public struct PollStreamFn<Element>: PollStream {
    @usableFromInline var body: (inout Context) -> Poll<Element?>

    @inlinable
    init(_ body: @escaping (inout Context) -> Poll<Element?>) {
        self.body = body
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Element?> {
        body(&context)
    }
}

/// A stream that calls `body` each time it is polled; `body` follows the
/// ``PollStream`` contract (`.pending` only after arranging a wake).
@inlinable
public func pollStreamFn<Element>(_ body: @escaping (inout Context) -> Poll<Element?>) -> PollStreamFn<Element> {
    PollStreamFn(body)
}

/// A stream of a sequence's elements, each ready at once. See ``iter(_:)``.
///
/// Every element takes a unit of the task's ``Budget``: a consumer that is
/// always ready (`forEach` over a long sequence) yields to other tasks and to
/// I/O every ``Budget/perPoll`` elements instead of running to the end.
///
/// **Cancellation:** dropping it drops the iterator and the elements not yet
/// taken.
public struct IterStream<Base: IteratorProtocol>: PollStream {
    @usableFromInline var base: Base

    @inlinable
    init(_ base: Base) {
        self.base = base
    }

    @inlinable
    public mutating func pollNext(_ context: inout Context) -> Poll<Base.Element?> {
        guard Budget.consume(orWaking: context.waker) else { return .pending }
        return .ready(base.next())
    }
}

/// A stream of the elements of `elements` (futures-rs's `stream::iter`).
///
/// ```swift
/// let runtime = try Runtime()
/// let delays = iter([30, 10, 20]).map { ms in sleepFuture(for: .milliseconds(ms)).map { ms } }
/// let inOrderOfFinishing = try runtime.block(on: delays.bufferUnordered(8).collect())   // [10, 20, 30]
/// ```
@inlinable
public func iter<S: Sequence>(_ elements: S) -> IterStream<S.Iterator> {
    IterStream(elements.makeIterator())
}
