/// A future built by a closure at its first poll. See ``lazy(_:)``.
///
/// **Cancellation:** dropping it before the first poll drops the closure
/// unrun; afterwards it drops the future the closure built.
public struct Lazy<Inner: Future>: Future {
    @usableFromInline var make: (() -> Inner)?
    @usableFromInline var inner: Inner?

    @inlinable
    init(_ make: @escaping () -> Inner) {
        self.make = make
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Inner.Output> {
        if let make = make.take() { inner = make() }
        precondition(inner != nil, "lazy polled after it completed")
        guard case .ready(let output) = inner!.poll(&context) else { return .pending }
        inner = nil
        return .ready(output)
    }
}

/// A future that runs `body` at its first poll and then polls the future it
/// returned (futures-rs's `lazy`): the way to defer work that a future's
/// creation would otherwise do at once.
///
/// ```swift
/// let runtime = try Runtime()
/// let later = lazy { ready(ContinuousClock.now) }   // nothing runs yet
/// let polledAt = try runtime.block(on: later)       // the clock is read here, at the first poll
/// ```
@inlinable
public func lazy<Inner: Future>(_ body: @escaping () -> Inner) -> Lazy<Inner> {
    Lazy(body)
}
