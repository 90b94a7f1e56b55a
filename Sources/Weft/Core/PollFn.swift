/// A future whose `poll` is a closure: the quickest way to write a leaf future by
/// hand (the async book's `poll_fn`).
///
/// The closure follows the ``Future`` contract: return `.pending` only after
/// arranging a wake of `context.waker`.
///
/// **Cancellation:** dropping it drops the closure and whatever it captured.
@frozen
public struct PollFn<Output>: Future {
    @usableFromInline var body: (inout Context) -> Poll<Output>

    @inlinable
    init(_ body: @escaping (inout Context) -> Poll<Output>) {
        self.body = body
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        body(&context)
    }
}

/// A future that calls `body` each time it is polled.
@inlinable
public func pollFn<Output>(_ body: @escaping (inout Context) -> Poll<Output>) -> PollFn<Output> {
    PollFn(body)
}

/// A future that is ready at once with a value.
///
/// **Cancellation:** nothing to cancel.
@frozen
public struct Ready<Output>: Future {
    @usableFromInline var value: Output?

    @inlinable
    init(_ value: Output) {
        self.value = value
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        guard let value = value.take() else {
            preconditionFailure("Ready polled after it completed")
        }
        return .ready(value)
    }
}

/// A future that is ready at once with `value`.
@inlinable
public func ready<Output>(_ value: Output) -> Ready<Output> {
    Ready(value)
}

/// A future that never completes and never wakes its task.
///
/// Useful in tests and as a `select` branch that must never win.
/// **Cancellation:** nothing to cancel.
@frozen
public struct Pending<Output>: Future {
    /// A future that is never ready.
    @inlinable
    public init() {}

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        .pending
    }
}

/// A future of type `Output` that never completes.
@inlinable
public func pending<Output>(_ type: Output.Type = Output.self) -> Pending<Output> {
    Pending()
}
