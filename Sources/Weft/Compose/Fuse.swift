/// A future that may be polled after it finished: it then returns `.pending`
/// without polling what it wrapped (and without arranging a wake, since none
/// will ever come). See ``Future/fuse()``.
///
/// This is Swift's answer to the async book's "`select!` needs fused futures":
/// a hand-written loop over several branches can keep polling every branch;
/// one that finished is a no-op, never polled again, never a busy loop. Check
/// ``isTerminated`` to tell when all are done.
///
/// **Cancellation:** dropping it drops the wrapped future if it is still
/// running; a finished `Fuse` holds nothing.
public struct Fuse<Base: Future>: Future {
    @usableFromInline var base: Base?

    @inlinable
    init(_ base: Base) {
        self.base = base
    }

    /// True once the wrapped future finished (its output was returned).
    @inlinable
    public var isTerminated: Bool { base == nil }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Base.Output> {
        guard base != nil else { return .pending }
        guard case .ready(let output) = base!.poll(&context) else { return .pending }
        base = nil
        return .ready(output)
    }
}

extension Future {
    /// This future, safe to poll after it finished: see ``Fuse``.
    @inlinable
    public func fuse() -> Fuse<Self> {
        Fuse(self)
    }
}
