/// A type-erased future: any future with the given output.
///
/// Use it to store futures of different types together (an array of branches, a
/// recursive future). Polling goes through one dynamic call.
///
/// **Cancellation:** dropping it drops the wrapped future.
public struct AnyFuture<Output>: Future {
    @usableFromInline var base: any Future<Output>

    /// Wraps `base`.
    @inlinable
    public init<F: Future<Output>>(_ base: F) {
        self.base = base
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        base.poll(&context)
    }
}

extension Future {
    /// This future, type-erased.
    @inlinable
    public func boxed() -> AnyFuture<Output> {
        AnyFuture(self)
    }
}
